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

// The index from an account's change to its ID holds exactly the cached
// accounts: filled with them, emptied with them, so it is bounded as the
// cache is.
func TestAccountChangesFollowEntries(t *testing.T) {
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
	entries, changes := 0, 0
	for i := range s.accounts {
		entries += len(s.accounts[i].entries)
		changes += len(s.changes[i].ids)
	}
	assert.LessOrEqual(t, entries, 64*4, "bounded by MaxEntries")
	assert.Equal(t, entries, changes, "one change per cached account")

	s.setTrusted(false)
	for i := range s.changes {
		assert.Empty(t, s.changes[i].ids, "emptied with the cache")
	}
}
