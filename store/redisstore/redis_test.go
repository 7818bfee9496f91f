package redisstore_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/redisstore"
	"github.com/keygate/keygate/store/storetest"
)

// newStack returns a fresh namespace, a store in it and a service over
// that store.
func newStack(t testing.TB, client redis.UniversalClient) (string, *redisstore.Store, *apikey.Service) {
	t.Helper()
	ns := redistest.Name(t, client, "store")
	rs, err := redisstore.New(context.Background(), client, redisstore.Config{Namespace: ns, Outbox: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := apikey.New(rs, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ns, rs, svc
}

func newStore(t testing.TB, client redis.UniversalClient) *redisstore.Store {
	t.Helper()
	_, rs, _ := newStack(t, client)
	return rs
}

// The suite on a single node and on a 3-master Cluster, where every
// script of a namespace runs in one slot.
func TestConformance(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			client := d.Connect(t)
			storetest.Run(t, func(t *testing.T) apikey.Store { return newStore(t, client) })
		})
	}
}

// The cache in front of Redis passes the same suite.
func TestConformanceWithCache(t *testing.T) {
	client := redistest.Client(t)
	storetest.Run(t, func(t *testing.T) apikey.Store {
		cs, err := cachestore.New(newStore(t, client), cachestore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	})
}

// A change made without an event (a direct Store call) writes no entry:
// the account's trail stays readable.
func TestChangesWithoutEventsWriteNone(t *testing.T) {
	ctx := context.Background()
	rs := newStore(t, redistest.Client(t))
	rec := &apikey.Record{Key: apikey.Key{ID: "plain", Owner: "acct", CreatedAt: time.Now()}, Hash: apikey.Hash(sha256.Sum256([]byte("plain")))}
	require.NoError(t, rs.Create(ctx, rec, 0, time.Now(), nil))
	require.NoError(t, rs.Revoke(ctx, rec.ID, time.Now(), nil))
	require.NoError(t, rs.Delete(ctx, rec.ID, nil))
	evs, err := rs.Events(ctx, "acct", "", "", 10)
	require.NoError(t, err)
	assert.Empty(t, evs)
}
