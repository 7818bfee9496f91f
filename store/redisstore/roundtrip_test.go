package redisstore_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/internal/redistest"
)

// Every operation's round trips, with scripts already loaded: the table
// is the contract, and the test keeps it true.
func TestRoundTripsPerOperation(t *testing.T) {
	ctx := context.Background()
	client := redistest.Client(t)
	hook := &roundTrips{}
	client.AddHook(hook)
	_, rs, svc := newStack(t, client)

	count := func(op func()) int64 {
		before := hook.n.Load()
		op()
		return hook.n.Load() - before
	}
	// Warm the script cache: a script's first run may need EVAL after
	// EVALSHA reports NOSCRIPT.
	warm, err := svc.Create(ctx, apikey.CreateParams{Owner: "warm", ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	_, _ = svc.Rotate(ctx, "warm", warm.Key.ID, time.Hour)
	_, _ = svc.ListPage(ctx, "warm", "", 100)
	_ = svc.Delete(ctx, "warm", warm.Key.ID)
	require.NoError(t, rs.AddUsage(ctx, []usage.Delta{{KeyID: "x", Requests: 1}}))
	require.NoError(t, rs.PutAccount(ctx, nil, &apikey.Account{ID: "warm", Plan: "free", Version: 1}))
	_, err = rs.Purge(ctx, time.Now(), 1, &event.Event{Type: event.KeyPurged})
	require.NoError(t, err)

	var issued apikey.Issued
	var issuedRec *apikey.Record
	rotated, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct2"})
	require.NoError(t, err)
	rotatedRec, err := rs.Get(ctx, rotated.Key.ID)
	require.NoError(t, err)
	h := func(s apikey.Secret) apikey.Hash { return apikey.Hash(sha256.Sum256([]byte(s.Reveal()))) }
	ev := &event.Event{Type: event.KeyUpdated, Account: "acct2", At: time.Now()}
	ops := []struct {
		name string
		want int64
		op   func()
	}{
		{"Create (claim ID, claim copy, script, fill copy)", 4, func() { issued, err = svc.Create(ctx, apikey.CreateParams{Owner: "acct"}); require.NoError(t, err) }},
		{"GetOwned", 1, func() { _, err := rs.GetOwned(ctx, "acct", issued.Key.ID); require.NoError(t, err) }},
		{"Lookup (cold verify)", 1, func() { _, err := rs.Lookup(ctx, h(issued.Secret), rs.Route("acct")); require.NoError(t, err) }},
		{"Get (ID index, record)", 2, func() { issuedRec, err = rs.Get(ctx, issued.Key.ID); require.NoError(t, err) }},
		{"List", 2, func() { _, err := rs.List(ctx, "acct"); require.NoError(t, err) }},
		{"Expiring (every slot's set in 5 pipelines, ID indexes, records)", 7, func() { _, err := rs.Expiring(ctx, time.Now(), time.Now().Add(time.Hour)); require.NoError(t, err) }},
		{"Update (events included)", 5, func() {
			next := *issuedRec
			next.Name = "renamed"
			require.NoError(t, rs.Update(ctx, issuedRec, &next, ev))
		}},
		{"Revoke", 6, func() { require.NoError(t, rs.Revoke(ctx, issued.Key.ID, time.Now(), ev)) }},
		{"Rotate", 9, func() {
			repl := &apikey.Record{Key: apikey.Key{ID: "repl", Owner: "acct2"}, Hash: apikey.Hash(sha256.Sum256([]byte("repl")))}
			require.NoError(t, rs.Rotate(ctx, rotatedRec, time.Now(), repl, 0, time.Now(), ev))
		}},
		{"Delete", 6, func() { require.NoError(t, rs.Delete(ctx, rotated.Key.ID, ev)) }},
		{"Purge (two sets of every slot, 5 pipelines each, then 6 per record: the warm key's replacement and the revoked key)", 22, func() { _, err := rs.Purge(ctx, time.Now().Add(time.Hour), 100, ev); require.NoError(t, err) }},
		{"Events", 1, func() { _, err := rs.Events(ctx, "acct", "", "", 20); require.NoError(t, err) }},
		{"AddUsage (a batch of any size)", 1, func() {
			require.NoError(t, rs.AddUsage(ctx, []usage.Delta{
				{KeyID: "a", Requests: 1, ByEndpoint: map[string]int64{"GET /a": 1}},
				{KeyID: "b", Requests: 2, ByEndpoint: map[string]int64{"GET /b": 2}},
			}))
		}},
		{"Usage", 1, func() { _, err := rs.Usage(ctx, "a"); require.NoError(t, err) }},
		{"PutAccount", 1, func() {
			require.NoError(t, rs.PutAccount(ctx, nil, &apikey.Account{ID: "acct", Plan: "free", Version: 1}))
		}},
		{"Account", 1, func() { _, err := rs.Account(ctx, "acct"); require.NoError(t, err) }},
	}
	for _, o := range ops {
		assert.Equal(t, o.want, count(o.op), o.name)
	}
}
