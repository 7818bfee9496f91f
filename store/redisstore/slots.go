package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/base62"
)

// The indexes a purge and an expiry query read, per slot.
//
// The expiry and revoked sets are kept per Cluster slot, in the slot of
// the account they index, so that creating, revoking and rotating touch
// only masters that hold the key's own data: a master lost costs the
// accounts it holds, never every revocation. A slot's sets are
//
//	ns:{<slot tag>}:exp   ZSET of its accounts' IDs with an expiry
//	ns:{<slot tag>}:rev   ZSET of its accounts' revoked IDs
//
// where the slot tag is the slot's route (see [Store.Route]). A purge or an expiry query reads the sets of every slot (16,384,
// in pipelines to each master, whatever the number of keys), and those of
// a master that does not answer are skipped and reported. The namespace-wide sets of
// layout 2 (ns:exp, ns:rev) are still read and cleaned, never written,
// so that instances of both layouts can run side by side until they
// drain.

// slots is the number of hash slots of a Redis Cluster.
const slots = 16384

// crc16 is CRC-16/XMODEM, the checksum by which Redis Cluster assigns a
// key to a slot.
func crc16(s string) uint16 {
	var crc uint16
	for i := range len(s) {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotOf returns the slot of a key whose hash tag holds tag.
func slotOf(tag string) int { return int(crc16(tag)) % slots }

// slotTags maps each slot to the first text of three base62 digits, in
// the digits' order, whose hash tag falls in it: the slot's route, and
// the hash tag of what is kept per slot. Every slot has one (62^3 texts
// cover the 16,384 slots).
var slotTags = sync.OnceValue(func() *[slots]string {
	var tags [slots]string
	d := base62.Digits
	for i := range len(d) * len(d) * len(d) {
		t := string([]byte{d[i/(62*62)], d[i/62%62], d[i%62]})
		if s := slotOf(t); tags[s] == "" {
			tags[s] = t
		}
	}
	return &tags
})

// routable reports whether s has a route's shape (three base62 digits),
// which, as a hash tag, names a slot.
func routable(s string) bool { return len(s) == 3 && base62.Valid(s) }

// slotKey returns the key of kind ("exp" or "rev") in the slot of
// owner's account.
func (s *Store) slotKey(owner, kind string) string {
	return s.slotKeyOf(slotOf(tag(owner)), kind)
}

func (s *Store) slotKeyOf(slot int, kind string) string { return s.routed(slotTags()[slot], kind) }

// slotBatch is how many slots one pipeline reads.
const slotBatch = 4096

// entry is a member of an index set.
type entry struct{ set, id string }

// rangeSets returns the members of every slot's set of kind, and of the
// namespace-wide set of layout 2, whose score is in [lo, hi], up to
// limit of them (0: all). It reads each master's slots from that master,
// in pipelines; a master that fails is skipped at its first failure, and
// the errors are returned, joined, with what the others held.
func (s *Store) rangeSets(ctx context.Context, kind, lo, hi string, limit int) ([]entry, error) {
	by := &redis.ZRangeBy{Min: lo, Max: hi}
	var mu sync.Mutex
	var found []entry
	var errs []error
	add := func(es []entry, err error) {
		mu.Lock()
		defer mu.Unlock()
		found = append(found, es...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	legacy := s.ns + kind
	ids, err := s.client.ZRangeByScore(ctx, legacy, by).Result()
	for _, id := range ids {
		add([]entry{{legacy, id}}, nil)
	}
	add(nil, err)
	// read reads the sets of the slots in ranges from node.
	read := func(ctx context.Context, node redis.Cmdable, ranges [][2]int) {
		var keys []string
		for _, r := range ranges {
			for slot := r[0]; slot <= r[1]; slot++ {
				keys = append(keys, s.slotKeyOf(slot, kind))
			}
		}
		n := 0
		for len(keys) > 0 && (limit == 0 || n < limit) {
			batch := keys[:min(slotBatch, len(keys))]
			keys = keys[len(batch):]
			cmds := make([]*redis.StringSliceCmd, len(batch))
			_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range batch {
					cmds[i] = p.ZRangeByScore(ctx, k, by)
				}
				return nil
			})
			if err != nil {
				add(nil, err)
				return
			}
			var es []entry
			for i, cmd := range cmds {
				for _, id := range cmd.Val() {
					es = append(es, entry{batch[i], id})
				}
			}
			n += len(es)
			add(es, nil)
		}
	}
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			ranges, err := ownSlots(ctx, node)
			if err != nil {
				add(nil, err)
				return nil
			}
			read(ctx, node, ranges)
			return nil
		})
		add(nil, err)
	default:
		read(ctx, s.client, [][2]int{{0, slots - 1}})
	}
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	return found, errors.Join(dedupe(errs)...)
}

// ownSlots returns the slot ranges the Cluster node serves, as it says.
func ownSlots(ctx context.Context, node *redis.Client) ([][2]int, error) {
	id, err := node.ClusterMyID(ctx).Result()
	if err != nil {
		return nil, err
	}
	shards, err := node.ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	var ranges [][2]int
	for _, sh := range shards {
		if slices.ContainsFunc(sh.Nodes, func(n redis.Node) bool { return n.ID == id }) {
			for _, r := range sh.Slots {
				ranges = append(ranges, [2]int{int(r.Start), int(r.End)})
			}
		}
	}
	return ranges, nil
}

// dedupe drops repeated errors by their text: a lost master fails every
// slot it holds alike.
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0]
	for _, err := range errs {
		if !seen[err.Error()] {
			seen[err.Error()] = true
			out = append(out, err)
		}
	}
	return out
}

// idRoute returns the route an ID starts with, followed by "_", as the
// IDs the key service makes for a store that routes do; "" for another.
func idRoute(id string) string {
	if len(id) > 4 && id[3] == '_' && routable(id[:3]) {
		return id[:3]
	}
	return ""
}
