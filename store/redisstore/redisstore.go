// Package redisstore is the [apikey.Store] on Redis, through go-redis v9's
// [redis.UniversalClient]: a single node, Sentinel or Cluster. Many service
// instances share one Redis; put store/cachestore in front so that
// verification costs no round trip on the hot path.
//
// # Key layout
//
// With namespace ns (default "keygate"), every key starts with the hash
// tag {ns}, so all of a namespace lives in one Cluster slot and every
// multi-key operation is one atomic Lua script:
//
//	{ns}:h:<sha256 hex>   record JSON, the Lookup index (one GET)
//	{ns}:id:<id>          hash hex of the record with that ID
//	{ns}:o:<owner>        ZSET of the owner's IDs, scored by the instant
//	                      (µs) until which the key counts as active: its
//	                      expiry, +inf, or 0 once revoked; the per-owner
//	                      limit is a ZCOUNT inside the create script
//	{ns}:exp              ZSET of unrevoked IDs with an expiry, by expiry
//	{ns}:rev              ZSET of revoked IDs, by revocation time, for
//	                      [Store.Purge] (with the expiry set)
//	{ns}:ev:<account>     stream of the account's events, each with
//	                      fields k (key ID) and e (event JSON), trimmed to
//	                      about [apikey.EventsKept] (see [Store.Events])
//	{ns}:u:<id>           usage counters (see [Store.AddUsage])
//	{ns}:a:<account>      account JSON (see [Store.Account])
//	{ns}:invalidate       pub/sub channel: the hash hex of every key that
//	                      is revoked, rotated or deleted, the
//	                      cachestore.AccountChange hex of every account
//	                      changed, and heartbeats
//	                      (see [Store.WatchInvalidations])
//
// One slot per namespace trades Cluster sharding for atomicity; key records
// are small (a million keys take a few hundred MB). Run several
// namespaces to spread a very large population.
//
// Updates read the record, change it in Go and write it back with a script
// that checks the stored JSON is unchanged (compare-and-set), retrying on a
// concurrent change, so Lua never re-encodes JSON.
//
// Every failure to reach Redis is returned wrapped, never as
// [apikey.ErrNotFound]; a record that does not decode is an error, never a
// zero record.
package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
)

// DefaultNamespace is the namespace when [Config].Namespace is "".
const DefaultNamespace = "keygate"

// maxRetries bounds compare-and-set retries under concurrent updates of
// one record.
const maxRetries = 32

// Config configures a [Store]. The zero value selects every default.
type Config struct {
	// Namespace prefixes every key and the invalidation channel, so that
	// several services or tests can share one Redis. It must not contain
	// braces. Default [DefaultNamespace].
	Namespace string
	// Timeout bounds each Lookup, the call on the request path, within
	// any deadline of the caller's, so that a Redis that hangs costs a
	// request a bounded time (then an error: answer 503). go-redis
	// honours a context's deadline only when the client's options set
	// ContextTimeoutEnabled; without it, its own ReadTimeout and retries
	// apply (3 seconds a try by default). Default 500 milliseconds.
	Timeout time.Duration
	// FeedTimeout bounds how long the invalidation feed may stay silent
	// before [Store.WatchInvalidations] reports it broken, so that a cache
	// in front stops trusting what it holds: the longest a revocation
	// made elsewhere can go unseen when the feed's connection dies
	// silently. Default 1 second.
	FeedTimeout time.Duration
	// SkipEvictionCheck skips [New]'s check of Redis's eviction policy,
	// for providers that hide the CONFIG command. Make sure yourself that
	// the policy is noeviction or volatile-*, and that persistence is on.
	SkipEvictionCheck bool
}

// Store keeps key records in Redis. It is safe for concurrent use.
type Store struct {
	client      redis.UniversalClient
	prefix      string // "{ns}:"
	channel     string
	timeout     time.Duration
	feedTimeout time.Duration
}

var _ apikey.Store = (*Store)(nil)

// ErrEvicting reports a Redis whose maxmemory-policy may evict keys
// without a TTL (allkeys-lru, allkeys-lfu, allkeys-random): under memory
// pressure it would silently delete API keys, which then stop verifying.
var ErrEvicting = errors.New("redisstore: Redis may evict keys")

// New returns a Store on client. It asks Redis (every master of a
// Cluster) for its maxmemory-policy and fails with [ErrEvicting] for a
// policy that can evict keys without a TTL, which key records are: an
// evicted key would stop working with no trace. noeviction and the
// volatile-* policies are accepted. A Redis that cannot be reached, or
// that refuses CONFIG GET, is an error too (see
// [Config].SkipEvictionCheck). New checks nothing else: persistence
// (appendonly or RDB snapshots) is the operator's to turn on.
func New(ctx context.Context, client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil redis client", apikey.ErrInvalidConfig)
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	if strings.ContainsAny(ns, "{}") {
		return nil, fmt.Errorf("%w: namespace %q must not contain braces", apikey.ErrInvalidConfig, ns)
	}
	if !cfg.SkipEvictionCheck {
		if err := checkEviction(ctx, client); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.FeedTimeout <= 0 {
		cfg.FeedTimeout = time.Second
	}
	prefix := "{" + ns + "}:"
	return &Store{client: client, prefix: prefix, channel: prefix + "invalidate", timeout: cfg.Timeout, feedTimeout: cfg.FeedTimeout}, nil
}

// checkEviction reads maxmemory-policy from every master.
func checkEviction(ctx context.Context, client redis.UniversalClient) error {
	check := func(ctx context.Context, c *redis.Client) error {
		cfg, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return fmt.Errorf("redisstore: reading maxmemory-policy (set Config.SkipEvictionCheck if your provider hides CONFIG): %w", err)
		}
		if policy := cfg["maxmemory-policy"]; strings.HasPrefix(policy, "allkeys-") {
			return fmt.Errorf("%w: %s has maxmemory-policy %s; set it to noeviction", ErrEvicting, c.Options().Addr, policy)
		}
		return nil
	}
	switch c := client.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, check)
	case *redis.Client:
		return check(ctx, c)
	}
	return errors.New("redisstore: cannot check the eviction policy of this client type; set Config.SkipEvictionCheck")
}

func (s *Store) recKey(h string) string       { return s.prefix + "h:" + h }
func (s *Store) idKey(id string) string       { return s.prefix + "id:" + id }
func (s *Store) ownerKey(owner string) string { return s.prefix + "o:" + owner }
func (s *Store) expKey() string               { return s.prefix + "exp" }
func (s *Store) usageKey(id string) string    { return s.prefix + "u:" + id }
func (s *Store) revKey() string               { return s.prefix + "rev" }
func (s *Store) eventKey(acct string) string  { return s.prefix + "ev:" + acct }

// eventJSON encodes ev for a script, "" for none.
func eventJSON(ev *apikey.Event) (string, error) {
	if ev == nil {
		return "", nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("redisstore: encode event: %w", err)
	}
	return string(b), nil
}

// wire is the JSON form of a record.
type wire struct {
	apikey.Key
	Hash        string `json:"hash"`
	HashVersion int    `json:"hash_version"`
}

func encode(rec *apikey.Record) (string, error) {
	b, err := json.Marshal(wire{Key: rec.Key, Hash: hex.EncodeToString(rec.Hash[:]), HashVersion: rec.HashVersion})
	if err != nil {
		return "", fmt.Errorf("redisstore: encode record %s: %w", rec.ID, err)
	}
	return string(b), nil
}

func decode(data string) (*apikey.Record, error) {
	var w wire
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		return nil, fmt.Errorf("redisstore: corrupt record: %w", err)
	}
	rec := &apikey.Record{Key: w.Key, HashVersion: w.HashVersion}
	if n, err := hex.Decode(rec.Hash[:], []byte(w.Hash)); err != nil || n != len(rec.Hash) || w.ID == "" || w.Owner == "" {
		return nil, errors.New("redisstore: corrupt record: missing id, owner or hash")
	}
	return rec, nil
}

// micros renders t as integer microseconds, the scores of the sets.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// activeScore is how long rec counts toward its owner's limit.
func activeScore(rec *apikey.Record) string {
	switch {
	case !rec.RevokedAt.IsZero():
		return "0"
	case rec.ExpiresAt.IsZero():
		return "+inf"
	}
	return micros(rec.ExpiresAt)
}

// expiryScore is rec's score in the expiry set, "" when it has none.
func expiryScore(rec *apikey.Record) string {
	if !rec.RevokedAt.IsZero() || rec.ExpiresAt.IsZero() {
		return ""
	}
	return micros(rec.ExpiresAt)
}

func wrap(op string, err error) error { return fmt.Errorf("redisstore: %s: %w", op, err) }

// Lookup implements [apikey.Store] with one GET.
func (s *Store) Lookup(ctx context.Context, hash apikey.Hash) (*apikey.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	data, err := s.client.Get(ctx, s.recKey(hex.EncodeToString(hash[:]))).Result()
	if errors.Is(err, redis.Nil) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, wrap("lookup", err)
	}
	rec, err := decode(data)
	if err != nil {
		return nil, err
	}
	if rec.Hash != hash {
		return nil, errors.New("redisstore: corrupt record: stored under another hash")
	}
	return rec, nil
}

// Create implements [apikey.Store].
func (s *Store) Create(ctx context.Context, rec *apikey.Record, maxActive int, now time.Time, ev *apikey.Event) error {
	data, err := encode(rec)
	if err != nil {
		return err
	}
	evData, err := eventJSON(ev)
	if err != nil {
		return err
	}
	h := hex.EncodeToString(rec.Hash[:])
	res, err := createScript.Run(ctx, s.client,
		[]string{s.idKey(rec.ID), s.recKey(h), s.ownerKey(rec.Owner), s.expKey(), s.eventKey(rec.Owner)},
		data, h+rec.Owner, rec.ID, max(maxActive, 0), micros(now), activeScore(rec), expiryScore(rec), evData, apikey.EventsKept,
	).Text()
	if err != nil {
		return wrap("create", err)
	}
	switch res {
	case "dup":
		return apikey.ErrDuplicate
	case "limit":
		return apikey.ErrTooManyKeys
	}
	return nil
}

// getRaw returns the hash hex and JSON of the record id, of owner unless
// owner is "".
func (s *Store) getRaw(ctx context.Context, owner, id string) (string, string, error) {
	res, err := getScript.Run(ctx, s.client, []string{s.idKey(id)}, s.prefix+"h:", owner).StringSlice()
	if errors.Is(err, redis.Nil) {
		return "", "", apikey.ErrNotFound
	}
	if err != nil {
		return "", "", wrap("get", err)
	}
	if len(res) != 2 {
		return "", "", errors.New("redisstore: get: unexpected reply")
	}
	return res[0], res[1], nil
}

// read returns the record id with the hash hex and JSON a compare-and-set
// needs.
func (s *Store) read(ctx context.Context, id string) (string, string, *apikey.Record, error) {
	h, data, err := s.getRaw(ctx, "", id)
	if err != nil {
		return "", "", nil, err
	}
	rec, err := decode(data)
	return h, data, rec, err
}

// Get implements [apikey.Store].
func (s *Store) Get(ctx context.Context, id string) (*apikey.Record, error) {
	return s.GetOwned(ctx, "", id)
}

// GetOwned returns owner's record id, or [apikey.ErrNotFound] for an
// unknown ID and for another owner's alike, after the same work in Redis,
// so that the time of the answer tells nothing either. An owner of ""
// matches any. [apikey.Service] uses it for its management calls.
func (s *Store) GetOwned(ctx context.Context, owner, id string) (*apikey.Record, error) {
	_, data, err := s.getRaw(ctx, owner, id)
	if err != nil {
		return nil, err
	}
	rec, err := decode(data)
	if err == nil && owner != "" && rec.Owner != owner {
		return nil, apikey.ErrNotFound // written before the id key kept the owner
	}
	return rec, err
}

// getMany returns the records of ids that still exist.
func (s *Store) getMany(ctx context.Context, op string, ids []string) ([]*apikey.Record, error) {
	recs := make([]*apikey.Record, 0, len(ids))
	if len(ids) == 0 {
		return recs, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, s.prefix)
	for _, id := range ids {
		args = append(args, id)
	}
	datas, err := getManyScript.Run(ctx, s.client, []string{s.expKey()}, args...).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, wrap(op, err)
	}
	for _, data := range datas {
		rec, err := decode(data)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// List implements [apikey.Store].
func (s *Store) List(ctx context.Context, owner string) ([]*apikey.Record, error) {
	ids, err := s.client.ZRange(ctx, s.ownerKey(owner), 0, -1).Result()
	if err != nil {
		return nil, wrap("list", err)
	}
	recs, err := s.getMany(ctx, "list", ids)
	if err != nil {
		return nil, err
	}
	sortRecords(recs, func(r *apikey.Record) time.Time { return r.CreatedAt })
	return recs, nil
}

// Expiring implements [apikey.Store].
func (s *Store) Expiring(ctx context.Context, from, to time.Time) ([]*apikey.Record, error) {
	ids, err := s.client.ZRangeByScore(ctx, s.expKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMicro()-1, 10), // µs rounding; filtered exactly below
		Max: strconv.FormatInt(to.UnixMicro()+1, 10),
	}).Result()
	if err != nil {
		return nil, wrap("expiring", err)
	}
	recs, err := s.getMany(ctx, "expiring", ids)
	if err != nil {
		return nil, err
	}
	kept := recs[:0]
	for _, rec := range recs {
		if rec.ExpiresWithin(from, to) {
			kept = append(kept, rec)
		}
	}
	sortRecords(kept, func(r *apikey.Record) time.Time { return r.ExpiresAt })
	return kept, nil
}

// update applies change to the record id and writes it back atomically,
// retrying when another writer got there first. change returns false to
// leave the record as it is. replacement, if not nil, is inserted in the
// same step.
// maxActive (when positive) is the owner's limit, checked against the
// active records at now before the replacement is inserted.
func (s *Store) update(ctx context.Context, op, id string, replacement *apikey.Record, maxActive int, now time.Time,
	ev *apikey.Event, change func(*apikey.Record) (bool, error)) error {
	evData, err := eventJSON(ev)
	if err != nil {
		return err
	}
	for range maxRetries {
		h, old, rec, err := s.read(ctx, id)
		if err != nil {
			return err
		}
		if ok, err := change(rec); err != nil || !ok {
			return err
		}
		data, err := encode(rec)
		if err != nil {
			return err
		}
		keys := []string{s.recKey(h), s.ownerKey(rec.Owner), s.expKey()}
		revoked := ""
		if !rec.RevokedAt.IsZero() {
			revoked = micros(rec.RevokedAt)
		}
		args := []any{old, data, id, activeScore(rec), expiryScore(rec), s.channel, h, "", "", "", "", "", max(maxActive, 0), micros(now),
			s.revKey(), revoked, s.eventKey(rec.Owner), evData, apikey.EventsKept}
		if replacement != nil {
			rdata, err := encode(replacement)
			if err != nil {
				return err
			}
			rh := hex.EncodeToString(replacement.Hash[:])
			keys = append(keys, s.idKey(replacement.ID), s.recKey(rh))
			args[7], args[8], args[9], args[10], args[11] = rdata, rh+replacement.Owner, replacement.ID, activeScore(replacement), expiryScore(replacement)
		}
		res, err := updateScript.Run(ctx, s.client, keys, args...).Text()
		if err != nil {
			return wrap(op, err)
		}
		switch res {
		case "ok":
			return nil
		case "dup":
			return apikey.ErrDuplicate
		case "limit":
			return apikey.ErrTooManyKeys
		}
	}
	return fmt.Errorf("redisstore: %s %s: too many concurrent updates", op, id)
}

// Revoke implements [apikey.Store].
func (s *Store) Revoke(ctx context.Context, id string, at time.Time, ev *apikey.Event) error {
	return s.update(ctx, "revoke", id, nil, 0, at, ev, func(rec *apikey.Record) (bool, error) {
		if !rec.RevokedAt.IsZero() {
			return false, nil
		}
		rec.RevokedAt = at
		return true, nil
	})
}

// Rotate implements [apikey.Store].
func (s *Store) Rotate(ctx context.Context, old *apikey.Record, retireAt time.Time, replacement *apikey.Record, maxActive int, now time.Time, ev *apikey.Event) error {
	if !retireAt.After(now) {
		maxActive = 0 // the old key stops counting at once: no check
	}
	return s.update(ctx, "rotate", old.ID, replacement, maxActive, now, ev, func(rec *apikey.Record) (bool, error) {
		if err := rec.Retire(old, replacement.ID, retireAt); err != nil {
			return false, err
		}
		return true, nil
	})
}

// Update implements [apikey.Store].
func (s *Store) Update(ctx context.Context, prev, next *apikey.Record, ev *apikey.Event) error {
	return s.update(ctx, "update", next.ID, nil, 0, time.Time{}, ev, func(rec *apikey.Record) (bool, error) {
		if !rec.Same(prev) {
			return false, apikey.ErrConflict
		}
		*rec = *next
		return true, nil
	})
}

// Delete implements [apikey.Store].
func (s *Store) Delete(ctx context.Context, id string, ev *apikey.Event) error {
	evData, err := eventJSON(ev)
	if err != nil {
		return err
	}
	for range maxRetries {
		h, old, rec, err := s.read(ctx, id)
		if err != nil {
			return err
		}
		res, err := deleteScript.Run(ctx, s.client,
			[]string{s.recKey(h), s.idKey(id), s.ownerKey(rec.Owner), s.expKey(), s.usageKey(id), s.revKey(), s.eventKey(rec.Owner)},
			old, id, s.channel, h, evData, apikey.EventsKept,
		).Text()
		if err != nil {
			return wrap("delete", err)
		}
		if res == "ok" {
			return nil
		}
	}
	return fmt.Errorf("redisstore: delete %s: too many concurrent updates", id)
}

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
