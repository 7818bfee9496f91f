package cachestore

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
)

// Cached accounts, found or not, are bounded by MaxEntries, and emptied
// with the cache.
func TestAccountsAreBounded(t *testing.T) {
	ctx := context.Background()
	inner := memstore.New()
	s, err := New(inner, Config{MaxEntries: 64 * 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for i := range 1000 {
		id := fmt.Sprint("acct_", i)
		if i%2 == 0 {
			require.NoError(t, inner.PutAccount(ctx, nil, &apikey.Account{ID: id, Plan: "free", Version: 1}))
		}
		_, _ = s.Account(ctx, id) // found or not, cached
	}
	entries := func() (n int) {
		for i := range s.accounts {
			n += len(s.accounts[i].entries)
		}
		return n
	}
	assert.LessOrEqual(t, entries(), 64*4, "bounded by MaxEntries")
	s.setTrusted(false)
	assert.Zero(t, entries(), "emptied with the cache")
}
