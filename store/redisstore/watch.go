package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
)

// The invalidation channel is Redis's classic pub/sub, which a Cluster
// delivers to every node's subscribers: it carries one message per
// lifecycle change (rare next to verifications). Heartbeats go on a
// channel per subscription, so that each instance receives its own only.

// accountMessage starts the invalidation channel's message of an account
// change, followed by the account's ID; a key change's message is the
// hex of its hash.
const accountMessage = "a:"

// WatchChanges implements [apikey.ChangeFeed]: it subscribes to the
// namespace's invalidation channel and reports every key and account
// changed through any Store of the namespace, until ctx ends. The
// callbacks may be called from two goroutines at once.
//
// A connection can die silently (a NAT or load balancer that drops it
// without closing it), so a subscription proves itself alive: every
// quarter of [Config].FeedTimeout it publishes a heartbeat, on a channel
// of its own, through the node it listens on, and one that receives
// nothing for FeedTimeout is reported broken and replaced by a new one.
//
// On a Cluster, which delivers every message to every node's
// subscribers, the feed is two subscriptions on different masters, and
// it is broken only while both are: losing one master neither breaks it
// nor empties any cache. A subscription that breaks moves to another
// master. It returns nil when ctx ends.
func (s *Store) WatchChanges(ctx context.Context, keyChanged func(apikey.Hash), accountChanged func(string), healthy func(bool)) error {
	f := &feed{store: s, keyChanged: keyChanged, accountChanged: accountChanged, healthy: healthy}
	n := 1
	if _, ok := s.client.(*redis.ClusterClient); ok {
		n = 2
	}
	f.nodes = make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f.run(ctx, i) })
	}
	wg.Wait()
	return nil
}

// feed is the subscriptions of one WatchChanges.
type feed struct {
	store          *Store
	keyChanged     func(apikey.Hash)
	accountChanged func(string)
	healthy        func(bool)

	mu    sync.Mutex
	up    int      // subscriptions established
	nodes []string // the master each subscription uses, "" for none
}

// set records a subscription's state in up, reporting the feed's on a
// change.
func (f *feed) set(up *bool, v bool) {
	if *up == v {
		return
	}
	*up = v
	f.mu.Lock()
	defer f.mu.Unlock()
	if v {
		f.up++
		if f.up == 1 {
			f.healthy(true)
		}
		return
	}
	f.up--
	if f.up == 0 {
		f.healthy(false)
	}
}

// run keeps subscription i going until ctx ends.
func (f *feed) run(ctx context.Context, i int) {
	up := false
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if client := f.pick(ctx, i, attempt); client != nil {
			f.watch(ctx, client, func(v bool) { f.set(&up, v) })
		}
		f.set(&up, false)
		if !sleep(ctx, f.store.feedTimeout/10) {
			break
		}
	}
	f.set(&up, false)
}

// pick returns the client subscription i listens and publishes through:
// the Store's own on one node; on a Cluster a master no other
// subscription uses, a different one on each attempt.
func (f *feed) pick(ctx context.Context, i, attempt int) redis.UniversalClient {
	cluster, ok := f.store.client.(*redis.ClusterClient)
	if !ok {
		return f.store.client
	}
	var (
		mu      sync.Mutex
		masters = map[string]*redis.Client{}
	)
	lctx, cancel := context.WithTimeout(ctx, f.store.feedTimeout)
	defer cancel()
	_ = cluster.ForEachMaster(lctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		masters[c.Options().Addr] = c
		mu.Unlock()
		return nil
	})
	addrs := make([]string, 0, len(masters))
	for a := range masters {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[i] = ""
	for k := range addrs {
		a := addrs[(i+attempt+k)%len(addrs)]
		if !slices.Contains(f.nodes, a) {
			f.nodes[i] = a
			return masters[a]
		}
	}
	return nil
}

// watch runs one subscription through client until it breaks, falls
// silent for FeedTimeout, or ctx ends.
func (f *feed) watch(ctx context.Context, client redis.UniversalClient, set func(bool)) {
	s := f.store
	var b [8]byte
	_, _ = rand.Read(b[:])
	beat := s.channel + ":hb:" + hex.EncodeToString(b[:])
	ps := client.Subscribe(ctx, s.channel, beat)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		// A blocked receive does not watch ctx; closing unblocks it.
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		_ = ps.Close()
	}()
	go heartbeats(ctx, stopped, client, beat, s.feedTimeout)
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.feedTimeout)
		if err != nil {
			return // broken, or silent for FeedTimeout: heartbeats stopped arriving
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				return
			}
			if m.Channel == s.channel {
				set(true)
			}
		case *redis.Message:
			if id, ok := strings.CutPrefix(m.Payload, accountMessage); ok {
				f.accountChanged(id)
				continue
			}
			var h apikey.Hash
			if n, err := hex.Decode(h[:], []byte(m.Payload)); err == nil && n == len(h) {
				f.keyChanged(h)
			}
		}
	}
}

// heartbeats publishes on channel through client every quarter of
// timeout until ctx ends or stopped closes. A failed publish is not
// reported: the subscription notices the silence.
func heartbeats(ctx context.Context, stopped <-chan struct{}, client redis.UniversalClient, channel string, timeout time.Duration) {
	t := time.NewTicker(timeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopped:
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, timeout/4)
			_ = client.Publish(pctx, channel, "").Err()
			cancel()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
