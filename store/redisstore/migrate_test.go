package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/redisstore"
)

// A namespace written by keygate before Cluster sharding (every key under
// the hash tag {ns}) is refused by New, naming Migrate; Migrate moves
// records, accounts, events and usage, after which the key verifies, and
// nothing is left in the old layout.
func TestMigrateFromTheUnshardedLayout(t *testing.T) {
	for _, d := range redistest.Deployments {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			client := d.Connect(t)
			ns := redistest.Name(t, client, "migrate")

			svc0, err := apikey.New(memstore.New(), apikey.Config{})
			require.NoError(t, err)
			issued, err := svc0.Create(ctx, apikey.CreateParams{Owner: "acct", Name: "old key"})
			require.NoError(t, err)
			h := apikey.Hash(sha256.Sum256([]byte(issued.Secret.Reveal())))
			hx := hex.EncodeToString(h[:])
			id := issued.Key.ID
			record, err := json.Marshal(struct {
				apikey.Key
				Hash        string `json:"hash"`
				HashVersion int    `json:"hash_version"`
			}{issued.Key, hx, 0})
			require.NoError(t, err)
			event, err := json.Marshal(event.Event{Type: event.KeyCreated, At: time.Now().UTC()})
			require.NoError(t, err)

			old := "{" + ns + "}:"
			_, err = client.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, old+"h:"+hx, record, 0)
				p.Set(ctx, old+"id:"+id, hx+"acct", 0)
				p.ZAdd(ctx, old+"o:acct", redis.Z{Score: 1e300, Member: id})
				p.Set(ctx, old+"a:acct", `{"id":"acct","plan":"starter","updated_at":"2026-01-01T00:00:00Z"}`, 0)
				p.XAdd(ctx, &redis.XAddArgs{Stream: old + "ev:acct", Values: []any{"k", id, "e", string(event)}})
				p.HSet(ctx, old+"u:"+id, "total", 5, "errors", 1, "last", strconv.FormatInt(time.Now().UnixMicro(), 10), "ep:GET /x", 5)
				return nil
			})
			require.NoError(t, err)

			_, err = redisstore.New(ctx, client, redisstore.Config{Namespace: ns})
			require.ErrorIs(t, err, redisstore.ErrOldLayout)
			assert.Contains(t, err.Error(), "Migrate")

			moved, err := redisstore.Migrate(ctx, client, redisstore.Config{Namespace: ns})
			require.NoError(t, err)
			assert.Equal(t, 1, moved)

			rs, err := redisstore.New(ctx, client, redisstore.Config{Namespace: ns})
			require.NoError(t, err)
			svc, err := apikey.New(rs, apikey.Config{})
			require.NoError(t, err)
			_, err = svc.Verify(ctx, issued.Secret.Reveal())
			require.NoError(t, err)
			page, err := svc.ListPage(ctx, "acct", "", 100)
			keys := page.Items
			require.NoError(t, err)
			require.Len(t, keys, 1)
			assert.Equal(t, "old key", keys[0].Name)
			events, err := rs.Events(ctx, "acct", "", "", 10)
			require.NoError(t, err)
			require.Len(t, events, 1)
			assert.Equal(t, id, events[0].KeyID)
			u, err := rs.Usage(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, int64(5), u.TotalRequests)
			a, err := rs.Account(ctx, "acct")
			require.NoError(t, err)
			assert.Equal(t, "starter", a.Plan)
			for _, k := range []string{"h:" + hx, "id:" + id, "o:acct", "a:acct", "ev:acct", "u:" + id} {
				assert.Zero(t, client.Exists(ctx, old+k).Val(), k)
			}
			require.NoError(t, svc.Revoke(ctx, "acct", id))
			_, err = svc.Verify(ctx, issued.Secret.Reveal())
			require.ErrorIs(t, err, apikey.ErrInvalidKey, "the moved key is changed like any other")

			moved, err = redisstore.Migrate(ctx, client, redisstore.Config{Namespace: ns})
			require.NoError(t, err)
			assert.Zero(t, moved, "a moved namespace is left alone")
		})
	}
}
