package redislimit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/redislimit"
)

// noop is the floor: a script that takes one key and does nothing, called
// as Allow calls its script (EVALSHA, one round trip).
var noop = redis.NewScript(`return 1`)

// readWrite is the least a limiter on Redis server time can do: read the
// time, read the state, write it back. It decides nothing.
var readWrite = redis.NewScript(`
redis.call('TIME')
local s = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], '0123456789012345678901234567890123456789', 'KEEPTTL')
return s`)

// readWriteTwo is readWrite for an account's state and a key's, called with
// the keys and arguments of an account + key Allow and answering as many
// bytes: what any script deciding that request must at least do.
var readWriteTwo = redis.NewScript(`
redis.call('TIME')
redis.call('GET', KEYS[1])
redis.call('GET', KEYS[2])
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
redis.call('SET', KEYS[2], ARGV[4], 'KEEPTTL')
return ARGV[3] .. ARGV[4] .. ARGV[3] .. ARGV[4]`)

// BenchmarkRedis compares Allow for a two-window policy with the
// do-nothing script (the floor), called as the floor and with Allow's
// inputs, and with scripts that only read the time and read and write one
// state, or two with Allow's inputs (what any limiter on server time must
// do), from one goroutine and from 64.
func BenchmarkRedis(b *testing.B) {
	ctx := context.Background()
	l, client, p := newLimiter(b)
	h := &hook{}
	client.AddHook(h)
	policy := mustPolicy("bench", ratelimit.Window{Name: "min", Limit: 10_000_000, Period: 60e9}, ratelimit.PerDay(1<<50))
	credits := &ratelimit.Credits{Balance: 1 << 50, Granted: time.Now(), Refill: 1 << 50, Monthly: true, RefillAt: time.Now().AddDate(0, 1, 0)}
	huge := mustPolicy("huge", ratelimit.Window{Name: "min", Limit: 1 << 40, Period: time.Minute, Fixed: true})
	local, err := redislimit.New(client, redislimit.Config{Prefix: p, Local: &redislimit.Local{}})
	if err != nil {
		b.Fatal(err)
	}
	// allowInputs are the keys and arguments of an account + key Allow
	// for a two-window policy (56 bytes each).
	spec := strings.Repeat("p", 56)
	allowInputs := func(key string) ([]string, []any) {
		base := p + "{acct_" + key + "}:"
		return []string{base + "a", base + "k:" + key, base + "c"}, []any{"", "1", spec, spec, ""}
	}
	run := map[string]func(key string) error{
		"floor=noop-script": func(key string) error { return noop.Run(ctx, client, []string{key}).Err() },
		"noop-script-allow-inputs": func(key string) error {
			keys, args := allowInputs(key)
			return noop.Run(ctx, client, keys, args...).Err()
		},
		"time-get-set-twice-allow-inputs": func(key string) error {
			keys, args := allowInputs(key)
			return readWriteTwo.Run(ctx, client, keys, args...).Err()
		},
		"time-get-set-script": func(key string) error {
			return ignoreNil(readWrite.Run(ctx, client, []string{p + key}).Err())
		},
		"allow": func(key string) error {
			_, err := l.Allow(ctx, ratelimit.Request{Key: key, KeyPolicy: policy, Cost: 1})
			return err
		},
		// Local-first: a lease of 1% of the window per round trip, under
		// a limit that never binds (a local-first call takes tens of
		// millions of tokens a minute).
		"allow-local-first": func(key string) error {
			_, err := local.Allow(ctx, ratelimit.Request{Key: key, KeyPolicy: huge, Cost: 1})
			return err
		},
		// The account's windows and the key's, in one script.
		"allow-account+key": func(key string) error {
			_, err := l.Allow(ctx, ratelimit.Request{Account: "acct_" + key, AccountPolicy: policy, Key: key, KeyPolicy: policy, Cost: 1})
			return err
		},
		// The account's windows and its credit balance.
		"allow-account+credits": func(key string) error {
			_, err := l.Allow(ctx, ratelimit.Request{Account: "acct_" + key, AccountPolicy: policy, Key: key, Credits: credits, Cost: 1})
			return err
		},
	}
	for _, name := range []string{"floor=noop-script", "noop-script-allow-inputs", "time-get-set-script", "time-get-set-twice-allow-inputs", "allow", "allow-local-first", "allow-account+key", "allow-account+credits"} {
		fn := run[name]
		_ = fn("warm")
		b.Run(name+"/goroutines=1", func(b *testing.B) {
			before := h.n.Load()
			b.ReportAllocs()
			for b.Loop() {
				if err := fn("key_1"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(h.n.Load()-before)/float64(b.N), "round-trips/op")
		})
		b.Run(name+"/goroutines=64", func(b *testing.B) {
			b.SetParallelism(32) // 32 x GOMAXPROCS(2)
			b.ReportAllocs()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				key := fmt.Sprint("key_", n.Add(1))
				for pb.Next() {
					if err := fn(key); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// ignoreNil treats a nil reply (a key not yet written) as success.
func ignoreNil(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
