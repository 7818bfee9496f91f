package ratelimit_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/ratelimit"
)

// starterPlan is the default plans' policy of that name.
var starterPlan, _ = ratelimit.DefaultPlans().Lookup("starter")

var t0 = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

func decisions(t testing.TB, n int) []ratelimit.Decision {
	t.Helper()
	now := t0
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: func() time.Time { return now }, SweepInterval: -1})
	var out []ratelimit.Decision
	for range n {
		d, err := m.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: starterPlan, Cost: 1})
		require.NoError(t, err)
		out = append(out, d)
	}
	return out
}

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	ds := decisions(t, 61)
	h := http.Header{}
	ratelimit.SetHeaders(h, &ds[0])
	assert.Equal(t, "60", h.Get("X-RateLimit-Limit"))
	assert.Equal(t, "59", h.Get("X-RateLimit-Remaining"))
	assert.Equal(t, strconv.FormatInt(t0.Add(time.Second).Unix(), 10), h.Get("X-RateLimit-Reset"), "the bucket is full again in 1s")
	assert.Empty(t, h.Get("Retry-After"))

	h = http.Header{}
	denied := ds[60]
	require.False(t, denied.Allowed)
	ratelimit.SetHeaders(h, &denied)
	assert.Equal(t, "0", h.Get("X-RateLimit-Remaining"))
	assert.Equal(t, "1", h.Get("Retry-After"), "one token returns in a second")
	assert.EqualValues(t, 1, denied.RetryAfterSeconds())

	ratelimit.SetHeaders(h, &ratelimit.Decision{FailedOpen: true, Allowed: true})
	assert.Equal(t, "60", h.Get("X-RateLimit-Limit"), "a failed-open decision writes nothing")
}

func TestRetryAfterRoundsUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		after time.Duration
		want  int64
	}{{time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {6 * time.Second, 6}, {0, 1}} {
		d := ratelimit.Decision{RetryAfter: tc.after}
		assert.Equal(t, tc.want, d.RetryAfterSeconds(), tc.after)
	}
	assert.Zero(t, (&ratelimit.Decision{Allowed: true}).RetryAfterSeconds())
}

func TestSetIETFHeaders(t *testing.T) {
	t.Parallel()
	ds := decisions(t, 1)
	h := http.Header{}
	ratelimit.SetIETFHeaders(h, &ds[0], ratelimit.IETFNone)
	assert.Empty(t, h)
	ratelimit.SetIETFHeaders(h, &ds[0], ratelimit.IETFDraft10)
	assert.Equal(t, `"min";q=60;w=60`, h.Get("RateLimit-Policy"))
	assert.Equal(t, `"min";r=59;t=1`, h.Get("RateLimit"))
	h = http.Header{}
	ratelimit.SetIETFHeaders(h, &ratelimit.Decision{FailedOpen: true, Allowed: true}, ratelimit.IETFDraft10)
	assert.Empty(t, h)

	// A calendar month's window is the length of the month it is in.
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: -1, Clock: func() time.Time { return time.Date(2032, 2, 10, 0, 0, 0, 0, time.UTC) }})
	defer m.Close()
	d, err := m.Allow(context.Background(), ratelimit.Request{Key: "k", KeyPolicy: mustPolicy("m", ratelimit.PerMonth(100)), Cost: 1})
	require.NoError(t, err)
	ratelimit.SetIETFHeaders(h, &d, ratelimit.IETFDraft10)
	assert.Equal(t, `"month";q=100;w=2505600`, h.Get("RateLimit-Policy")) // 29 days
	assert.Equal(t, `"month";r=99;t=1728000`, h.Get("RateLimit"))         // 20 days
}

func TestSetHeadersAllocations(t *testing.T) {
	ds := decisions(t, 1)
	h := http.Header{}
	allocs := testing.AllocsPerRun(100, func() { ratelimit.SetHeaders(h, &ds[0]) })
	assert.Equal(t, 1.0, allocs)
	assert.Equal(t, "59", h.Get("X-RateLimit-Remaining"))
}

// Values longer than SetHeaders' inline buffer, in a Decision made by
// another limiter, come out whole.
func TestSetHeadersLongValues(t *testing.T) {
	t.Parallel()
	huge := mustPolicy("huge", ratelimit.Window{Limit: 1 << 60, Period: 1000 * 24 * time.Hour, Fixed: true})
	reset := t0.Add(999 * 24 * time.Hour)
	d := ratelimit.Decision{Policy: huge, Limit: 1 << 60, Remaining: 1<<60 - 1, Reset: reset, RetryAfter: reset.Sub(t0)}
	h := http.Header{}
	ratelimit.SetHeaders(h, &d)
	assert.Equal(t, strconv.FormatInt(1<<60, 10), h.Get("X-RateLimit-Limit"))
	assert.Equal(t, strconv.FormatInt(1<<60-1, 10), h.Get("X-RateLimit-Remaining"))
	assert.Equal(t, strconv.FormatInt(reset.Unix(), 10), h.Get("X-RateLimit-Reset"))
	assert.Equal(t, strconv.FormatInt(999*24*3600, 10), h.Get("Retry-After"))

	d.Limit = 7
	ratelimit.SetHeaders(h, &d)
	assert.Equal(t, "7", h.Get("X-RateLimit-Limit"))
	assert.Equal(t, strconv.FormatInt(1<<60-1, 10), h.Get("X-RateLimit-Remaining"))
	assert.Equal(t, strconv.FormatInt(999*24*3600, 10), h.Get("Retry-After"))
}

// BenchmarkHeaders compares SetHeaders with the obvious three Header.Set
// calls and strconv.
func BenchmarkHeaders(b *testing.B) {
	d := decisions(b, 1)[0]
	b.Run("SetHeaders", func(b *testing.B) {
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			ratelimit.SetHeaders(h, &d)
		}
	})
	b.Run("floor=Header.Set+strconv", func(b *testing.B) {
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			h.Set("X-RateLimit-Limit", strconv.FormatInt(d.Limit, 10))
			h.Set("X-RateLimit-Remaining", strconv.FormatInt(d.Remaining, 10))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
		}
	})
	b.Run("SetIETFHeaders", func(b *testing.B) {
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			ratelimit.SetIETFHeaders(h, &d, ratelimit.IETFDraft10)
		}
	})
}
