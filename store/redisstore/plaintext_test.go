package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/internal/redistest"
)

// Every byte the store writes to Redis is free of the key text: the raw
// values of every key of the namespace are scanned for it.
func TestRedisHoldsNoPlaintext(t *testing.T) {
	ctx := context.Background()
	client := redistest.Client(t)
	ns, rs, svc := newStack(t, client)

	var hidden []string
	for range 3 {
		issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", Description: "plaintext check"})
		require.NoError(t, err)
		hidden = append(hidden, issued.Secret.Reveal()[len(issued.Key.DisplayPrefix):])
	}
	rotated, err := svc.Rotate(ctx, "acct", mustFirstID(t, svc), 0)
	require.NoError(t, err)
	hidden = append(hidden, rotated.Secret.Reveal()[len(rotated.Key.DisplayPrefix):])
	require.NoError(t, rs.AddUsage(ctx, []usage.Delta{{KeyID: rotated.Key.ID, Requests: 1, ByEndpoint: map[string]int64{"GET /x": 1}}}))

	var dump strings.Builder
	iter := client.Scan(ctx, 0, ns+":*", 1000).Iterator()
	n := 0
	for iter.Next(ctx) {
		key := iter.Val()
		n++
		dump.WriteString(key)
		switch client.Type(ctx, key).Val() {
		case "string":
			dump.WriteString(client.Get(ctx, key).Val())
		case "hash":
			for f, v := range client.HGetAll(ctx, key).Val() {
				dump.WriteString(f + v)
			}
		case "zset":
			for _, m := range client.ZRange(ctx, key, 0, -1).Val() {
				dump.WriteString(m)
			}
		case "list":
			for _, m := range client.LRange(ctx, key, 0, -1).Val() {
				dump.WriteString(m)
			}
		case "stream":
			for _, m := range client.XRange(ctx, key, "-", "+").Val() {
				for f, v := range m.Values {
					dump.WriteString(f + fmt.Sprint(v))
				}
			}
		default:
			t.Fatalf("unexpected type of %s", key)
		}
	}
	require.NoError(t, iter.Err())
	require.Greater(t, n, 8, "the namespace holds records, indexes and usage")
	for _, h := range hidden {
		require.NotContains(t, dump.String(), h)
	}
}

func mustFirstID(t *testing.T, svc *apikey.Service) string {
	page, err := svc.ListPage(context.Background(), "acct", "", 100)
	keys := page.Items
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	return keys[0].ID
}
