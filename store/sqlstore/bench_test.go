package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/store/cachestore"
)

// BenchmarkSQL measures, on each database, the floor (a SELECT 1 round
// trip on the same pool), a cold verification (one query on the hash
// index), a verification behind cachestore, a create (one transaction)
// and a usage batch of 1,000 keys.
func BenchmarkSQL(b *testing.B) {
	ctx := context.Background()
	for _, d := range dialects {
		s, db := newStoreDB(b, d)
		svc, err := apikey.New(s, apikey.Config{MaxActiveKeys: -1})
		if err != nil {
			b.Fatal(err)
		}
		issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		key := issued.Secret.Reveal()
		b.Run(string(d)+"/floor=select-1", func(b *testing.B) {
			for b.Loop() {
				var one int
				if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(d)+"/verify-cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Verify(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(d)+"/verify-cached", func(b *testing.B) {
			cache, err := cachestore.New(s, cachestore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer cache.Close()
			cached, err := apikey.New(cache, apikey.Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cached.Verify(ctx, key); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cached.Verify(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(d)+"/create", func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := svc.Create(ctx, apikey.CreateParams{Owner: fmt.Sprint("owner-", i%100)}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(d)+"/usage-batch-1000-keys", func(b *testing.B) {
			batch := make([]usage.Delta, 1000)
			for i := range batch {
				k, err := svc.Create(ctx, apikey.CreateParams{Owner: "usage"})
				if err != nil {
					b.Fatal(err)
				}
				batch[i] = usage.Delta{KeyID: k.Key.ID, Requests: 3, Errors: 1, LastUsedAt: time.Now(),
					ByEndpoint: map[string]int64{"GET /items": 2, "POST /items": 1}}
			}
			for b.Loop() {
				if err := s.AddUsage(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
