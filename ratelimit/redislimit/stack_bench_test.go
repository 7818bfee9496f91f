package redislimit_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/redislimit"
	"github.com/keygate/keygate/store/memstore"
)

// discard is a reusable ResponseWriter, so that only the stack allocates.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkStack runs the full middleware stack (auth, permission,
// account windows, headers) around a bare handler, with the memory
// limiter, the Redis limiter exact, and local-first, for one key and for
// 10,000 keys (ten to an account) from parallel goroutines. The plan
// never binds (2^40 a minute), so every request takes the full path.
func BenchmarkStack(b *testing.B) {
	client := redistest.Client(b)
	plan := ratelimit.MustPolicy("big", ratelimit.Window{Name: "min", Limit: 1 << 40, Period: time.Minute, Fixed: true}, ratelimit.Window{Name: "day", Limit: 1 << 40, Period: 24 * time.Hour, Fixed: true})
	plans, err := ratelimit.NewPlans(plan)
	if err != nil {
		b.Fatal(err)
	}
	limiters := map[string]func(b *testing.B) ratelimit.Limiter{
		"floor=memory": func(*testing.B) ratelimit.Limiter {
			return ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
		},
		"redis-exact": func(b *testing.B) ratelimit.Limiter {
			l, err := redislimit.New(client, redislimit.Config{Prefix: redistest.Name(b, client, "stack") + ":"})
			if err != nil {
				b.Fatal(err)
			}
			return l
		},
		"redis-local-first": func(b *testing.B) ratelimit.Limiter {
			l, err := redislimit.New(client, redislimit.Config{Prefix: redistest.Name(b, client, "stack") + ":", Local: &redislimit.Local{}})
			if err != nil {
				b.Fatal(err)
			}
			return l
		},
	}
	for _, n := range []int{1, 10_000} {
		for _, name := range []string{"floor=memory", "redis-exact", "redis-local-first"} {
			b.Run(name+"/keys="+strconv.Itoa(n), func(b *testing.B) {
				svc, err := apikey.New(memstore.New(), apikey.Config{MaxActiveKeys: -1, Plans: plans.Names()})
				if err != nil {
					b.Fatal(err)
				}
				reqs := make([]*http.Request, n)
				for i := range reqs {
					owner := "acct_" + strconv.Itoa(i/10)
					if i%10 == 0 {
						if err := svc.CreateAccount(context.Background(), apikey.Account{ID: owner, Plan: "big"}); err != nil {
							b.Fatal(err)
						}
					}
					issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: owner, Permissions: []apikey.Permission{apikey.Read}})
					if err != nil {
						b.Fatal(err)
					}
					reqs[i], _ = http.NewRequest("GET", "/items", nil)
					reqs[i].Header.Set("Authorization", "Bearer "+issued.Secret.Reveal())
				}
				mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: limiters[name](b), Plans: plans})
				if err != nil {
					b.Fatal(err)
				}
				h := mw.Authenticate(middleware.Chain(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusNoContent)
				}), mw.RequireMethod()))
				// Steady state: every account has had its first decision
				// (for local-first, its first lease).
				for _, r := range reqs {
					h.ServeHTTP(&discard{h: http.Header{}}, r)
				}
				b.ResetTimer()
				b.ReportAllocs()
				var goroutines atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					w := &discard{h: http.Header{}}
					i := int(goroutines.Add(1)) * len(reqs) / 3
					for pb.Next() {
						h.ServeHTTP(w, reqs[i%len(reqs)])
						i += 7
					}
				})
			})
		}
	}
}
