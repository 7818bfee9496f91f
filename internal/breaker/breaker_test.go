package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/testclock"
)

// reply is an error reply as go-redis types them.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

func TestFault(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name  string
		err   error
		fault bool
	}{
		{"no error", nil, false},
		{"the call's timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, false},
		{"connection refused", refused, true},
		{"connection closed", io.EOF, true},
		{"a slot no master serves", reply("CLUSTERDOWN Hash slot not served"), true},
		{"a node loading its data", reply("LOADING Redis is loading the dataset in memory"), true},
		{"a slot no master serves, wrapped", fmt.Errorf("redisstore: layout check: %w", reply("CLUSTERDOWN The cluster is down")), true},
		{"a missing key", reply("redis: nil"), false},
		{"a script's error", reply("ERR user_script:1: bad"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.fault, Fault(tc.err))
		})
	}
}

func TestBreaker(t *testing.T) {
	ctx := context.Background()
	down := errors.New("connection refused")
	clock := testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := Set{Clock: clock.Now}
	calls := 0
	call := func(err error) func() error { return func() error { calls++; return err } }

	t.Run("faults below the threshold, or not in a row, keep it closed", func(t *testing.T) {
		for range Threshold - 1 {
			require.ErrorIs(t, s.Do(ctx, "a", call(down)), down)
		}
		require.NoError(t, s.Do(ctx, "a", call(nil)))
		for range Threshold - 1 {
			require.ErrorIs(t, s.Do(ctx, "a", call(down)), down)
		}
		require.ErrorIs(t, s.Do(ctx, "a", call(reply("ERR wrong"))), reply("ERR wrong"))
		require.ErrorIs(t, s.Do(ctx, "a", call(down)), down)
		require.NoError(t, s.Do(ctx, "a", call(nil)))
	})
	t.Run("threshold faults in a row open it: calls fail without being made", func(t *testing.T) {
		for range Threshold {
			require.ErrorIs(t, s.Do(ctx, "a", call(down)), down)
		}
		calls = 0
		require.ErrorIs(t, s.Do(ctx, "a", call(nil)), ErrOpen)
		assert.Zero(t, calls)
		require.NoError(t, s.Do(ctx, "b", call(nil)), "another node is not affected")
	})
	t.Run("after the cooldown one call probes; a failed probe reopens it", func(t *testing.T) {
		clock.Advance(Cooldown)
		calls = 0
		require.ErrorIs(t, s.Do(ctx, "a", call(down)), down)
		require.ErrorIs(t, s.Do(ctx, "a", call(nil)), ErrOpen)
		assert.Equal(t, 1, calls)
	})
	t.Run("a probe whose caller gave up leaves it open", func(t *testing.T) {
		clock.Advance(Cooldown)
		gone, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, s.Do(gone, "a", call(context.Canceled)), context.Canceled)
		require.ErrorIs(t, s.Do(ctx, "a", call(nil)), ErrOpen, "not closed by a caller's giving up")
	})
	t.Run("one probe at a time; its success closes it", func(t *testing.T) {
		clock.Advance(Cooldown)
		var made, refused atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				err := s.Do(ctx, "a", func() error { made.Add(1); <-release; return nil })
				if errors.Is(err, ErrOpen) {
					refused.Add(1)
				}
			})
		}
		for refused.Load() != 15 { // the probe waits for release
			runtime.Gosched()
		}
		close(release)
		wg.Wait()
		assert.Equal(t, int32(1), made.Load())
		assert.Equal(t, int32(15), refused.Load())
		require.NoError(t, s.Do(ctx, "a", call(nil)))
	})
}
