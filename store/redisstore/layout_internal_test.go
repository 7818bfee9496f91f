package redisstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/redistest"
)

func TestTag(t *testing.T) {
	for name, want := range map[string]string{
		"acct_1": "acct_1",
		"a:b c":  "a:b c",
		"":       "~",
		"a{b":    "~617b62",
		"}":      "~7d",
		"~7d":    "~7e3764", // not "~7d": no two names share a tag
	} {
		assert.Equal(t, want, tag(name), name)
	}
}

// A writer that stops between the record's script and its copy (a crash,
// a cut connection) leaves a held copy: served as it is while the hold
// is young, repaired from the record by the first Lookup after it.
func TestInterruptedChangesConverge(t *testing.T) {
	eachDeployment(t, "crash", func(t *testing.T, ctx context.Context, client redis.UniversalClient, s *Store) {
		owner := "acct{1}" // a brace in the account: still one slot
		newRecord := func(id string) *apikey.Record {
			return &apikey.Record{Key: apikey.Key{ID: id, Owner: owner, CreatedAt: time.Now().UTC()}, Hash: apikey.Hash(sha256.Sum256([]byte("secret-" + id)))}
		}
		// interrupt runs a change to the record id up to its script,
		// with the hold deadline given; data "" deletes.
		interrupt := func(id string, deadline time.Time, change func(*apikey.Record) string) {
			t.Helper()
			_, old, rec, version, err := s.read(ctx, id)
			require.NoError(t, err)
			require.Equal(t, "ok", holdScript.Run(ctx, client, []string{s.copyKey("", hexOf(rec.Hash))}, version+1, micros(deadline)).Val())
			data := change(rec)
			if data != "" {
				data, err = encode(rec, version+1)
				require.NoError(t, err)
			}
			keys := append([]string{s.recKey(owner, id), s.ownerKey(owner)}, s.eventKeys(owner, id)...)
			args := append([]any{old, data, id, activeScore(rec), "", "", "", "", 0, micros(time.Now())}, s.eventArgs(nil, owner)...)
			require.Equal(t, "ok", changeScript.Run(ctx, client, keys, args...).Val())
		}
		copyOf := func(rec *apikey.Record) map[string]string {
			return client.HGetAll(ctx, s.copyKey("", hexOf(rec.Hash))).Val()
		}

		rec := newRecord("revoked")
		require.NoError(t, s.Create(ctx, rec, 0, time.Now(), nil))
		interrupt("revoked", time.Now().Add(time.Hour), func(r *apikey.Record) string { r.RevokedAt = time.Now().UTC(); return "x" })
		got, err := s.Lookup(ctx, rec.Hash, "")
		require.NoError(t, err)
		assert.True(t, got.RevokedAt.IsZero(), "a young hold: the copy as it is")
		require.NoError(t, client.HSet(ctx, s.copyKey("", hexOf(rec.Hash)), "wd", micros(time.Now().Add(-time.Millisecond))).Err())
		got, err = s.Lookup(ctx, rec.Hash, "")
		require.NoError(t, err)
		assert.False(t, got.RevokedAt.IsZero(), "past the hold: repaired from the record")
		assert.Equal(t, "2", copyOf(rec)["v"])
		assert.NotContains(t, copyOf(rec), "wt", "the hold ended")

		rec = newRecord("deleted")
		require.NoError(t, s.Create(ctx, rec, 0, time.Now(), nil))
		interrupt("deleted", time.Now().Add(-time.Millisecond), func(*apikey.Record) string { return "" })
		_, err = s.Lookup(ctx, rec.Hash, "")
		require.ErrorIs(t, err, apikey.ErrNotFound)
		assert.Empty(t, copyOf(rec), "the copy of a deleted record is deleted")

		// A create that claimed the hash and stopped: never verifies,
		// and the claim is removed.
		rec = newRecord("unborn")
		require.NoError(t, s.claim(ctx, rec))
		require.NoError(t, client.HSet(ctx, s.copyKey("", hexOf(rec.Hash)), "wd", micros(time.Now().Add(-time.Millisecond))).Err())
		_, err = s.Lookup(ctx, rec.Hash, "")
		require.ErrorIs(t, err, apikey.ErrNotFound)
		assert.Empty(t, copyOf(rec))
	})
}

// Racing changes of one record leave its copy equal to the record, with
// no hold left behind.
func TestRacingChangesLeaveTheCopyEqualToTheRecord(t *testing.T) {
	eachDeployment(t, "race", func(t *testing.T, ctx context.Context, client redis.UniversalClient, s *Store) {
		rec := &apikey.Record{Key: apikey.Key{ID: "k", Owner: "acct", CreatedAt: time.Now().UTC()}, Hash: apikey.Hash(sha256.Sum256([]byte("secret")))}
		require.NoError(t, s.Create(ctx, rec, 0, time.Now(), nil))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 5 {
					_, err := s.run(ctx, change{op: "update", id: "k", apply: func(r *apikey.Record) (bool, error) {
						r.Name = fmt.Sprintf("writer %d, change %d", i, j)
						return true, nil
					}})
					assert.NoError(t, err)
					_, err = s.Lookup(ctx, rec.Hash, "")
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		_, data, _, version, err := s.read(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, int64(41), version, "every change landed once")
		copied := client.HGetAll(ctx, s.copyKey("", hexOf(rec.Hash))).Val()
		assert.Equal(t, data, copied["r"])
		assert.NotContains(t, copied, "wt")
	})
}

// eachDeployment runs test on a Store of a namespace of its own (kind
// names it) on every test deployment, the single node and the Cluster.
func eachDeployment(t *testing.T, kind string, test func(t *testing.T, ctx context.Context, client redis.UniversalClient, s *Store)) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			client := d.Connect(t)
			s, err := New(ctx, client, Config{Namespace: redistest.Name(t, client, kind)})
			require.NoError(t, err)
			test(t, ctx, client, s)
		})
	}
}
