package redisstore

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
)

// heartbeat is what every Store watching invalidations publishes on the
// channel, so that each subscriber can tell a live feed from a silent one.
// It is not a hash, so subscribers ignore it.
const heartbeat = "heartbeat"

// WatchInvalidations subscribes to the namespace's invalidation channel
// and calls invalidate with the hash of every key revoked, rotated or
// deleted through any Store of the namespace, until ctx ends. healthy is
// called with true each time the subscription is (re)established and with
// false each time it breaks: messages sent while it was broken are lost,
// so a cache must drop what it holds at both moments.
//
// A connection can die silently (a NAT or load balancer that drops it
// without closing it), so the feed proves itself alive: while watching,
// the Store publishes a heartbeat every quarter of [Config].FeedTimeout,
// and a subscription that receives nothing for FeedTimeout is reported
// broken and replaced by a new one. It returns nil when ctx ends.
func (s *Store) WatchInvalidations(ctx context.Context, invalidate func(apikey.Hash), healthy func(bool)) error {
	go s.publishHeartbeats(ctx)
	up := false
	set := func(v bool) {
		if up != v {
			up = v
			healthy(v)
		}
	}
	for ctx.Err() == nil {
		s.watch(ctx, invalidate, set)
		set(false)
		if !sleep(ctx, s.feedTimeout/10) {
			break
		}
	}
	set(false)
	return nil
}

// watch runs one subscription until it breaks, falls silent for
// FeedTimeout, or ctx ends.
func (s *Store) watch(ctx context.Context, invalidate func(apikey.Hash), set func(bool)) {
	ps := s.client.Subscribe(ctx, s.channel)
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
			set(true)
		case *redis.Message:
			var h apikey.Hash
			if n, err := hex.Decode(h[:], []byte(m.Payload)); err == nil && n == len(h) {
				invalidate(h)
			}
		}
	}
}

// publishHeartbeats publishes a heartbeat every quarter of FeedTimeout
// until ctx ends. A failed publish is not reported: the subscribers notice
// the silence.
func (s *Store) publishHeartbeats(ctx context.Context) {
	t := time.NewTicker(s.feedTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, s.feedTimeout/4)
			_ = s.client.Publish(pctx, s.channel, heartbeat).Err()
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
