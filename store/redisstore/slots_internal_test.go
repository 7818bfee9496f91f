package redisstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/redistest"
)

// The slot of a hash tag, and the tag of each slot, are the ones a Redis
// Cluster computes.
func TestSlotTags(t *testing.T) {
	assert.Equal(t, uint16(0x31c3), crc16("123456789"), "CRC-16/XMODEM's check value")
	tags := slotTags()
	for slot, tag := range tags {
		require.True(t, routable(tag), "slot %d: %q", slot, tag)
		require.Equal(t, slot, slotOf(tag), "slot %d", slot)
	}
	client := redistest.Cluster(t)
	ctx := context.Background()
	cmds := make([]*redis.IntCmd, 0, slots)
	_, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, tag := range tags {
			cmds = append(cmds, p.ClusterKeySlot(ctx, "ns:{"+tag+"}:exp"))
		}
		return nil
	})
	require.NoError(t, err)
	for slot, cmd := range cmds {
		require.Equal(t, int64(slot), cmd.Val(), "Redis puts slot %d's tag %q in another slot", slot, tags[slot])
	}
	for _, owner := range []string{"acct_1", "a{b", ""} {
		want, err := client.ClusterKeySlot(ctx, s0.recKey(owner, "x")).Result()
		require.NoError(t, err)
		assert.Equal(t, int(want), slotOf(tag(owner)), owner)
	}
}

var s0 = &Store{ns: "ns:"}

// Entries in the namespace-wide sets of layout 2, which instances of the
// earlier version still write, are purged and corrected as the slots'
// are, and leave those sets as they go.
func TestLayout2SetsDrain(t *testing.T) {
	eachDeployment(t, "drain", func(t *testing.T, ctx context.Context, client redis.UniversalClient, s *Store) {
		now := time.Now().UTC()
		var ids []string
		for i := range 3 {
			id := fmt.Sprint("old-", i)
			rec := &apikey.Record{Key: apikey.Key{ID: id, Owner: fmt.Sprint("acct-", i), CreatedAt: now.Add(-2 * time.Hour),
				ExpiresAt: now.Add(-time.Hour)}, Hash: apikey.Hash(sha256.Sum256([]byte("secret-" + id)))}
			require.NoError(t, s.Create(ctx, rec, 0, rec.CreatedAt, nil))
			// As layout 2 indexed it: in the namespace-wide set only.
			require.NoError(t, client.ZRem(ctx, s.slotKey(rec.Owner, "exp"), id).Err())
			require.NoError(t, client.ZAdd(ctx, s.ns+"exp", redis.Z{Score: score(rec.ExpiresAt), Member: id}).Err())
			ids = append(ids, id)
		}
		// One entry no record matches any more: corrected away.
		require.NoError(t, client.ZAdd(ctx, s.ns+"rev", redis.Z{Score: score(now.Add(-time.Hour)), Member: "gone"}).Err())

		recs, err := s.Expiring(ctx, now.Add(-90*time.Minute), now)
		require.NoError(t, err)
		require.Len(t, recs, 3, "layout 2's entries are read")
		n, err := s.Purge(ctx, now, 100, nil)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		for _, set := range []string{s.ns + "exp", s.ns + "rev"} {
			left, err := client.ZCard(ctx, set).Result()
			require.NoError(t, err)
			assert.Zero(t, left, set)
		}
		for _, id := range ids {
			_, err := s.Get(ctx, id)
			require.ErrorIs(t, err, apikey.ErrNotFound)
		}
	})
}

// Revoking a key needs only the masters of its own data: with the master
// of layout 2's namespace-wide revoked set down, every key whose record,
// lookup copy and ID index live elsewhere is revoked (and stops
// verifying), and a purge deletes what the other masters index, then
// reports the master it could not read.
func TestRevocationSurvivesAnotherMaster(t *testing.T) {
	c := redistest.StartCluster(t, "--cluster-require-full-coverage", "no")
	client := c.Client()
	ctx := context.Background()
	s, err := New(ctx, client, Config{})
	require.NoError(t, err)
	master := func(key string) string {
		m, err := client.MasterForKey(ctx, key)
		require.NoError(t, err)
		return m.Options().Addr
	}
	victim := master(s.ns + "rev")
	now := time.Now().UTC()
	var spared []*apikey.Record
	for i := range 24 {
		id := fmt.Sprint("key-", i)
		rec := &apikey.Record{Key: apikey.Key{ID: id, Owner: fmt.Sprint("acct-", i), CreatedAt: now},
			Hash: apikey.Hash(sha256.Sum256([]byte("secret-" + id)))}
		require.NoError(t, s.Create(ctx, rec, 0, now, nil))
		if master(s.recKey(rec.Owner, id)) != victim && master(s.copyKey(rec.Route, hexOf(rec.Hash))) != victim && master(s.idKey(id)) != victim {
			spared = append(spared, rec)
		}
	}
	require.NotEmpty(t, spared)
	for i, addr := range c.Addrs {
		if addr == victim {
			c.Kill(i)
		}
	}
	for _, rec := range spared {
		require.NoError(t, s.Revoke(ctx, rec.ID, now, nil), "revoking %s", rec.ID)
		got, err := s.Lookup(ctx, rec.Hash, "")
		require.NoError(t, err)
		require.False(t, got.RevokedAt.IsZero(), "%s still verifies", rec.ID)
	}
	n, err := s.Purge(ctx, now.Add(time.Second), 100, nil)
	require.ErrorContains(t, err, "did not answer")
	require.Equal(t, len(spared), n, "the reachable revoked keys are purged")
}
