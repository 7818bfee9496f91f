package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A million distinct keys, then idle: the sweep evicts them all and the
// heap returns to near where it started.
func TestMemoryReturnsAfterIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million keys")
	}
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC).UnixNano())
	m := NewMemory(MemoryConfig{Clock: func() time.Time { return time.Unix(0, now.Load()) }, SweepInterval: -1})
	keys := make([]string, 1_000_000)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
	}
	before := heapInUse()
	for _, k := range keys {
		_, err := m.Allow(context.Background(), Request{Key: k, KeyPolicy: free, Cost: 1})
		require.NoError(t, err)
	}
	full := heapInUse()
	require.Equal(t, len(keys), stateful(m))

	now.Add(int64(time.Minute)) // minute buckets full again, day windows still counting
	m.Sweep()
	assert.Equal(t, len(keys), stateful(m), "a day window that has counted keeps its key until the day ends")
	now.Add(int64(24 * time.Hour))
	m.Sweep()
	assert.Zero(t, stateful(m))
	after := heapInUse()
	t.Logf("heap in use: %d MB before, %d MB with 1M keys (%d B/key incl. map), %d MB after the sweep",
		before>>20, full>>20, (full-before)/uint64(len(keys)), after>>20)
	assert.Less(t, float64(after), float64(before)+0.1*float64(full-before), "the sweep returns at least 90% of the memory")
	runtime.KeepAlive(keys)
}

func TestSweepKeepsBusyKeys(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC).UnixNano())
	m := NewMemory(MemoryConfig{Clock: func() time.Time { return time.Unix(0, now.Load()) }, SweepInterval: -1})
	p := mustPolicy("t", PerMinute(10))
	_, _ = m.Allow(context.Background(), Request{Key: "busy", KeyPolicy: p, Cost: 10})
	now.Add(int64(30 * time.Second))
	m.Sweep()
	d, err := m.Allow(context.Background(), Request{Key: "busy", KeyPolicy: p, Cost: 6})
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the half-empty bucket survived the sweep")
	now.Add(int64(time.Minute))
	m.Sweep()
	assert.Zero(t, stateful(m))
	require.NoError(t, m.Close())
}

func TestMemoryBackgroundSweep(t *testing.T) {
	m := NewMemory(MemoryConfig{SweepInterval: time.Millisecond})
	_, _ = m.Allow(context.Background(), Request{Key: "k", KeyPolicy: mustPolicy("t", Window{Limit: 1000, Period: time.Millisecond}), Cost: 1})
	require.Eventually(t, func() bool { return stateful(m) == 0 }, time.Minute, time.Millisecond)
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")
}

// stateful returns the number of accounts and keys with state.
func stateful(m *Memory) (n int) {
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].accounts) + len(m.shards[i].keys)
		m.shards[i].mu.Unlock()
	}
	return n
}

// A spent credit balance outlives every sweep; once a refill has made it
// what a new one would be, the sweep drops it.
func TestSweepKeepsSpentCredits(t *testing.T) {
	var now atomic.Int64
	start := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	now.Store(start.UnixNano())
	m := NewMemory(MemoryConfig{Clock: func() time.Time { return time.Unix(0, now.Load()) }, SweepInterval: -1})
	credits := &Credits{Balance: 5, Granted: start, Refill: 5, RefillAt: start.Add(time.Hour)}
	r := Request{Account: "a", AccountPolicy: free, Key: "k", Credits: credits, Cost: 2}
	_, err := m.Allow(context.Background(), r)
	require.NoError(t, err)
	now.Add(int64(59 * time.Minute))
	m.Sweep()
	d, err := m.Allow(context.Background(), r)
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Balance, "the sweep kept what was spent")
	now.Add(int64(time.Hour))
	m.Sweep()
	assert.Empty(t, m.shards[shardOf("a")].credits, "refilled: back to a new balance, dropped")
}

// Reading where limits stand (cost 0) keeps no state: a flood of account
// IDs whose limits are read costs no memory.
func TestReportsKeepNoState(t *testing.T) {
	m := NewMemory(MemoryConfig{SweepInterval: -1})
	credits := &Credits{Balance: 5, Granted: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range 10_000 {
		d, err := m.Allow(context.Background(), Request{Account: fmt.Sprint("acct-", i), AccountPolicy: free, Key: fmt.Sprint("key-", i),
			KeyPolicy: starter, Credits: credits})
		require.NoError(t, err)
		require.True(t, d.Allowed)
		require.Equal(t, int64(5), d.Balance)
	}
	for i := range m.shards {
		sh := &m.shards[i]
		assert.Zero(t, len(sh.accounts)+len(sh.keys)+len(sh.credits), "shard %d", i)
	}
}

// Custom keeps a bounded number of interned policies, however many
// distinct sets of windows key owners choose.
func TestCustomIsBounded(t *testing.T) {
	for i := range 3 * maxCustom {
		_, err := Custom(Window{Limit: int64(i + 1), Period: time.Hour})
		require.NoError(t, err)
	}
	n := 0
	customs.Range(func(any, any) bool { n++; return true })
	assert.LessOrEqual(t, n, maxCustom)
	a, err := Custom(Window{Limit: 7, Period: time.Minute})
	require.NoError(t, err)
	b, err := Custom(Window{Limit: 7, Period: time.Minute})
	require.NoError(t, err)
	assert.Same(t, a, b, "equal windows asked for in a row are one policy")
}
