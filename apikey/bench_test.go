package apikey_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
)

var (
	sinkHash   [32]byte
	sinkRecord *apikey.Record
	sinkBool   bool
)

// benchSizes is the ladder of stored keys for the lookup benchmarks.
var benchSizes = []int{1, 1_000, 1_000_000}

// fillStore stores n keys directly (bypassing Create's per-owner
// bookkeeping, which is not what is measured) and returns their texts.
func fillStore(b *testing.B, n int) (*apikey.Service, *memstore.Store, []string) {
	b.Helper()
	store := memstore.New()
	svc, err := apikey.New(store, apikey.Config{})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, n)
	perms := apikey.Permissions{apikey.Read}
	for i := range keys {
		s, err := svc.Format().Generate("")
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = s.Reveal()
		rec := &apikey.Record{
			Key:  apikey.Key{ID: fmt.Sprint(i), Owner: fmt.Sprint("acct_", i%1000), Permissions: perms},
			Hash: apikey.Hash(sha256.Sum256([]byte(keys[i]))),
		}
		if err := store.Create(context.Background(), rec, 0, rec.CreatedAt, nil); err != nil {
			b.Fatal(err)
		}
	}
	return svc, store, keys
}

func BenchmarkGenerate(b *testing.B) {
	f := apikey.DefaultFormat()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Generate("live"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	f := apikey.DefaultFormat()
	s, _ := f.Generate("live")
	key := s.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Parse(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is what any verification must cost at least: SHA-256 of a
// key of the default length and one map lookup by the 32-byte hash, in a
// map of the same size as BenchmarkVerify's store.
func BenchmarkFloor(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			_, _, keys := fillStore(b, min(n, 1))
			m := make(map[[32]byte]*apikey.Record, n)
			for i := range n {
				m[sha256.Sum256(fmt.Append(nil, i))] = &apikey.Record{}
			}
			key := []byte(keys[0])
			m[sha256.Sum256(key)] = &apikey.Record{}
			b.ReportAllocs()
			for b.Loop() {
				sinkHash = sha256.Sum256(key)
				sinkRecord = m[sinkHash]
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchSizes {
		svc, _, keys := fillStore(b, n)
		unknown, _ := svc.Format().Generate("")
		good := keys[len(keys)/2]
		// Malformed keys by the stage that rejects them: garbage of the
		// wrong length or prefix fails on its first bytes; a typo in an
		// otherwise perfect key needs the whole checksum pass.
		cases := []struct {
			name string
			key  string
			ok   bool
		}{
			{"hit", good, true},
			{"miss", unknown.Reveal(), false},
			{"malformed=length", "Bearer " + good, false},
			{"malformed=1MB", strings.Repeat("k", 1<<20), false},
			{"malformed=prefix", "sk" + good[2:], false},
			{"malformed=charset", good[:20] + "-" + good[21:], false},
			{"malformed=checksum", good[:20] + flip(good[20]) + good[21:], false},
		}
		for _, tc := range cases {
			b.Run(fmt.Sprintf("keys=%d/%s", n, tc.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p, err := svc.Verify(ctx, tc.key)
					if (err == nil) != tc.ok {
						b.Fatal(err)
					}
					sinkBool = p.Has(apikey.Read)
				}
			})
		}
	}
}

// BenchmarkVerifyParallel shows that verification does not serialise on a
// lock: with GOMAXPROCS goroutines, ns/op should fall toward 1/cores of
// the serial figure.
func BenchmarkVerifyParallel(b *testing.B) {
	ctx := context.Background()
	svc, _, keys := fillStore(b, 1_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := svc.Verify(ctx, keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkVerifyPeppered is a verification hit with keyed hashing
// (HMAC-SHA256 under a pepper) instead of plain SHA-256.
func BenchmarkVerifyPeppered(b *testing.B) {
	pepper := apikey.Pepper{Version: 1, Secret: []byte(strings.Repeat("p", 32))}
	svc, err := apikey.New(memstore.New(), apikey.Config{Peppers: []apikey.Pepper{pepper}})
	if err != nil {
		b.Fatal(err)
	}
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "bench", Permissions: []apikey.Permission{apikey.Read}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := svc.Verify(context.Background(), issued.Secret.Reveal())
		if err != nil {
			b.Fatal(err)
		}
		sinkBool = p.Has(apikey.Read)
	}
}
