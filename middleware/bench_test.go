package middleware_test

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/time/rate"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event/notice"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/redislimit"
	"github.com/keygate/keygate/store/memstore"
)

// discard is a reusable ResponseWriter: headers are overwritten in place
// from one request to the next, so the benchmarks count only the
// middleware's own allocations.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var noop = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

// unlimited lets every benchmark request through the limiter's full path
// (50 million a minute: the most a Redis token bucket can refill, one
// token per microsecond, with room to spare).
var unlimited = mustPolicy("bench",
	ratelimit.Window{Name: "min", Limit: 50_000_000, Period: time.Minute},
	ratelimit.Window{Name: "day", Limit: 1 << 50, Period: 24 * time.Hour, Fixed: true})

// capped is a per-key cap that never binds either.
var capped = mustPolicy("cap",
	ratelimit.Window{Name: "min", Limit: 50_000_000, Period: time.Minute},
	ratelimit.Window{Name: "day", Limit: 1 << 50, Period: 24 * time.Hour, Fixed: true})

var plans, _ = ratelimit.NewPlans(unlimited, capped)

// stack returns auth + method permission + limiter (nil: memory) +
// headers around noop, and requests carrying n distinct keys, ten to an
// account; with keyCap each key also has a plan of its own, so that every
// request is decided under the account's windows and the key's; with
// credits each account has a balance that every request spends; with
// withNotices the middleware watches for limit thresholds.
func stack(b *testing.B, n int, keyCap, credits, withNotices bool, limiter ratelimit.Limiter, meters metric.MeterProvider) (http.Handler, []*http.Request) {
	b.Helper()
	svc, err := apikey.New(memstore.New(), apikey.Config{MaxActiveKeys: -1, Plans: plans})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, n)
	for i := range reqs {
		params := apikey.CreateParams{Owner: "acct_" + strconv.Itoa(i/10), Permissions: []apikey.Permission{apikey.Read}}
		if keyCap {
			params.Plan = capped.Name()
		}
		issued, err := svc.Create(context.Background(), params)
		if err != nil {
			b.Fatal(err)
		}
		r, _ := http.NewRequest("GET", "/items", nil)
		r.Header.Set("Authorization", "Bearer "+issued.Secret.Reveal())
		reqs[i] = r
		if credits && i%10 == 0 {
			err := svc.SetAccount(context.Background(), apikey.Account{ID: params.Owner, Credits: &ratelimit.Credits{Balance: 1 << 50}})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if limiter == nil {
		limiter = ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1})
	}
	var notices *notice.Limits
	if withNotices {
		// Nothing runs it: the limits never bind, so nothing is queued.
		if notices, err = notice.NewLimits(notice.LimitsConfig{Facts: memstore.New()}); err != nil {
			b.Fatal(err)
		}
	}
	mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: limiter, MeterProvider: meters, Notices: notices})
	if err != nil {
		b.Fatal(err)
	}
	return mw.Authenticate(middleware.Chain(noop, mw.RequireMethod())), reqs
}

// handRolled is the usual rate-limit-only middleware, as tutorials write
// it: one x/time/rate limiter per key in a mutex-guarded map, headers set
// with Header.Set and strconv. It authenticates nothing; it is measured
// beside the full stack for scale.
func handRolled(next http.Handler) http.Handler {
	var mu sync.Mutex
	limiters := map[string]*rate.Limiter{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		l, ok := limiters[key]
		if !ok {
			l = rate.NewLimiter(rate.Every(time.Minute/1_000_000_000), 1_000_000_000)
			limiters[key] = l
		}
		mu.Unlock()
		if !l.Allow() {
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		}
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(l.Burst()))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(int(l.Tokens())))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
		next.ServeHTTP(w, r)
	})
}

// BenchmarkStack measures each stack with only its own keys and state
// alive, so that no case pays for another's heap in garbage collection,
// at steady state: every key has made a request before the timer starts
// (for the local-first Redis limiter, its account has its first lease).
func BenchmarkStack(b *testing.B) {
	redisLimiter := func(local *redislimit.Local) func(b *testing.B) ratelimit.Limiter {
		return func(b *testing.B) ratelimit.Limiter {
			client := redistest.Client(b)
			l, err := redislimit.New(client, redislimit.Config{Prefix: redistest.Name(b, client, "stack") + ":", Local: local})
			if err != nil {
				b.Fatal(err)
			}
			return l
		}
	}
	cases := []struct {
		name            string
		keyCap, credits bool
		metrics         bool                                 // through the OpenTelemetry SDK
		notices         bool                                 // limit thresholds watched
		limiter         func(b *testing.B) ratelimit.Limiter // nil: memory
		wrap            func(stack http.Handler) http.Handler
	}{
		{name: "floor=bare-handler", wrap: func(http.Handler) http.Handler { return noop }},
		{name: "full-stack"},
		{name: "full-stack-key-cap", keyCap: true},
		{name: "full-stack-credits", credits: true},
		{name: "full-stack-metrics", metrics: true},
		{name: "full-stack-notices", notices: true},
		{name: "full-stack-redis-exact", limiter: redisLimiter(nil)},
		{name: "full-stack-redis-local-first", limiter: redisLimiter(&redislimit.Local{})},
		{name: "peer=hand-rolled-x-time-rate", wrap: func(http.Handler) http.Handler { return handRolled(noop) }},
	}
	for _, n := range []int{1, 10_000} {
		name := "keys=1"
		if n > 1 {
			name = "keys=10000/parallel"
		}
		for _, c := range cases {
			b.Run(c.name+"/"+name, func(b *testing.B) {
				var limiter ratelimit.Limiter
				if c.limiter != nil {
					limiter = c.limiter(b)
				}
				var meters metric.MeterProvider
				if c.metrics {
					provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
					b.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
					meters = provider
				}
				h, reqs := stack(b, n, c.keyCap, c.credits, c.notices, limiter, meters)
				if c.wrap != nil {
					h = c.wrap(h)
				}
				for _, r := range reqs {
					h.ServeHTTP(&discard{h: http.Header{}}, r)
				}
				runtime.GC()
				b.ResetTimer()
				run(b, h, reqs, n > 1)
			})
		}
	}
}

func run(b *testing.B, h http.Handler, reqs []*http.Request, parallel bool) {
	b.ReportAllocs()
	if !parallel {
		w := &discard{h: http.Header{}}
		for b.Loop() {
			h.ServeHTTP(w, reqs[0])
		}
		return
	}
	var goroutines atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		// Each goroutine starts elsewhere, so they do not walk the same
		// keys in lockstep.
		i := int(goroutines.Add(1)) * len(reqs) / 3
		for pb.Next() {
			h.ServeHTTP(w, reqs[i%len(reqs)])
			i += 7
		}
	})
}
