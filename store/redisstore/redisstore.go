// Package redisstore is the [apikey.Store] on Redis, through go-redis v9's
// [redis.UniversalClient]: a single node, Sentinel or Cluster. Many service
// instances share one Redis; put store/cachestore in front so that
// verification costs no round trip on the hot path.
//
// An account's keys, audit trail and account record share a hash tag, so
// that one script changes them atomically in one Cluster slot and
// accounts spread over every master; each key also has a lookup copy,
// which verification reads in one round trip, kept in the account's slot
// too (see [Store.Route]), and a change writes the record first, then
// the copy, in an order that lets a change cut half-way repair itself.
// A lost master costs only the accounts it holds. Changes are announced on a pub/sub
// channel ([Store.WatchChanges]). The layout is described beside the
// code that names the keys, the write order beside the code of the
// changes.
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
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/internal/breaker"
)

// DefaultNamespace is the namespace when [Config].Namespace is "".
const DefaultNamespace = "keygate"

// maxRetries bounds compare-and-set retries under concurrent updates of
// one record.
const maxRetries = 32

// holdLease is how long a Lookup serves a copy whose change is in flight
// before it repairs the copy from the record (see the write order in
// change.go).
const holdLease = time.Second

// Config configures a [Store]. The zero value selects every default.
type Config struct {
	// Namespace prefixes every key and the invalidation channel, so that
	// several services or tests can share one Redis. It must not contain
	// braces. Default [DefaultNamespace].
	Namespace string
	// Timeout bounds each Lookup and Account, the calls on the request
	// path, within any deadline of the caller's, so that a Redis that
	// hangs costs a request a bounded time (then an error: answer 503).
	// After three faults in a row (timeouts, refused or broken
	// connections) on one node, these calls to it fail at once, and one
	// every half second probes whether it is back. go-redis
	// honours a context's deadline only when the client's options set
	// ContextTimeoutEnabled, which [New] requires. Default 500
	// milliseconds.
	Timeout time.Duration
	// ManagementTimeout bounds every other call (changes, lists, the
	// audit trail, usage, purges), so that a management request on a
	// Redis that hangs is answered in a bounded time too. Default 5
	// seconds.
	ManagementTimeout time.Duration
	// EventRetention is how long the audit trail keeps an event (see
	// [event.PerKey] for the bound per key). Default
	// [event.Retention], 90 days.
	EventRetention time.Duration
	// Outbox keeps every event for delivery too (the store is then an
	// [event.Outbox]), in the same script as its change, until a
	// dispatcher (apikey/event/dispatch) settles it. Leave it off when
	// nothing drains it.
	Outbox bool
	// MeterProvider, when set, reports the circuit breaker through the
	// OpenTelemetry metric API: keygate.breaker.open{component="redisstore"},
	// the servers whose breaker is open. Default: none.
	MeterProvider metric.MeterProvider
	// FeedTimeout bounds how long the invalidation feed may stay silent
	// before [Store.WatchChanges] reports it broken, so that a cache
	// in front stops trusting what it holds: the longest a revocation
	// made elsewhere can go unseen when the feed's connection dies
	// silently. Default 1 second.
	FeedTimeout time.Duration
	// SkipEvictionCheck skips [New]'s check of Redis's eviction policy,
	// for providers that hide the CONFIG command. Make sure yourself that
	// the policy is noeviction or volatile-*, and that persistence is on.
	SkipEvictionCheck bool
	// Logger receives what the store reports on its own: a check at start
	// that waits for a master to return, and its outcome. Default
	// [slog.Default].
	Logger *slog.Logger
}

// Store keeps key records in Redis. It is safe for concurrent use.
type Store struct {
	client      redis.UniversalClient
	ns          string // "ns:"
	channel     string
	timeout     time.Duration
	manage      time.Duration
	feedTimeout time.Duration
	// eventRetention is Config.EventRetention.
	eventRetention time.Duration
	outbox         bool
	// breakers fail the reads on the request path (Lookup, Account) at
	// once while their node is down, instead of each waiting for Timeout.
	breakers breaker.Set
	log      *slog.Logger
}

var _ apikey.Store = (*Store)(nil)

// ErrEvicting reports a Redis whose maxmemory-policy may evict keys
// without a TTL (allkeys-lru, allkeys-lfu, allkeys-random): under memory
// pressure it would silently delete API keys, which then stop verifying.
var ErrEvicting = errors.New("redisstore: Redis may evict keys")

// New returns a Store on client, which must set ContextTimeoutEnabled in
// its options (else New fails with [apikey.ErrInvalidConfig]: no Timeout
// could bound its calls). It asks Redis (every master of a
// Cluster) for its maxmemory-policy and fails with [ErrEvicting] for a
// policy that can evict keys without a TTL, which key records are: an
// evicted key would stop working with no trace. noeviction and the
// volatile-* policies are accepted. A Redis that refuses CONFIG GET is
// an error too (see [Config].SkipEvictionCheck). New checks nothing
// else: persistence (appendonly or RDB snapshots) is the operator's to
// turn on.
//
// A Redis that does not answer is an error naming its address. A Cluster
// starts while at least one master answers: the checks that need a
// master that does not (its eviction policy, the namespace's layout when
// it holds the marker) run again in the background until they succeed,
// and [Config].Logger reports the wait and its outcome, so that a
// restart or a scale-up during an outage serves the accounts of the
// other masters.
//
// A namespace that still holds records in the layout of keygate before
// Cluster sharding fails with [ErrOldLayout]: run [Migrate] first.
func New(ctx context.Context, client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil redis client", apikey.ErrInvalidConfig)
	}
	if !honoursDeadlines(client) {
		return nil, fmt.Errorf("%w: redisstore: set ContextTimeoutEnabled in the client's options: without it a Redis that hangs holds every request for go-redis's ReadTimeout and retries", apikey.ErrInvalidConfig)
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	if strings.ContainsAny(ns, "{}") {
		return nil, fmt.Errorf("%w: namespace %q must not contain braces", apikey.ErrInvalidConfig, ns)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.ManagementTimeout <= 0 {
		cfg.ManagementTimeout = 5 * time.Second
	}
	if cfg.FeedTimeout <= 0 {
		cfg.FeedTimeout = time.Second
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = event.Retention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{client: client, ns: ns + ":", channel: ns + ":invalidate", timeout: cfg.Timeout,
		manage: cfg.ManagementTimeout, feedTimeout: cfg.FeedTimeout, eventRetention: cfg.EventRetention, outbox: cfg.Outbox,
		log: cfg.Logger}
	answered, pending, err := s.checkStart(ctx, !cfg.SkipEvictionCheck)
	switch {
	case err != nil:
		return nil, err
	case !answered:
		return nil, unreachable(client, pending)
	case pending != nil:
		s.log.Warn("redisstore: started with a master that does not answer; its checks run when it does", "error", pending)
		go s.recheck(!cfg.SkipEvictionCheck)
	}
	if cfg.MeterProvider != nil {
		// For the store's life: the client is the caller's to close.
		if _, err := s.breakers.Observe(cfg.MeterProvider, "redisstore"); err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
	}
	return s, nil
}

// checkStart makes New's checks: every master answers, none may evict
// keys (when eviction is set), the namespace has this layout. It fails
// for what waiting cannot mend, and returns the fault of a master that
// did not answer as pending: its checks are then still to be made.
// answered reports whether any master did.
func (s *Store) checkStart(ctx context.Context, eviction bool) (answered bool, pending, err error) {
	var mu sync.Mutex
	var refused error // what a master said that waiting will not mend
	check := func(ctx context.Context, c *redis.Client) error {
		fault, err := c.Ping(ctx).Err(), error(nil)
		if fault == nil && eviction {
			fault, err = checkEviction(ctx, c)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case fault != nil && breaker.Fault(fault):
			pending = fmt.Errorf("redisstore: the master at %s: %w", c.Options().Addr, fault)
			return nil
		case fault != nil:
			err = fault // a reply, such as NOAUTH
		default:
			answered = true
		}
		if err != nil && refused == nil {
			refused = err
		}
		return err
	}
	var mapErr error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		mapErr = c.ForEachMaster(ctx, check)
	case *redis.Client:
		mapErr = check(ctx, c)
	default:
		refused = errors.New("redisstore: cannot check the masters of this client type; use a *redis.Client or *redis.ClusterClient")
	}
	switch {
	case refused != nil:
		return answered, pending, refused
	case mapErr != nil:
		return false, mapErr, nil // the Cluster's map: no node answered
	case !answered:
		return false, pending, nil
	}
	fault, err := s.checkLayout(ctx)
	if fault != nil {
		if !breaker.Fault(fault) {
			return answered, pending, fault
		}
		pending = fault
	}
	return answered, pending, err
}

// recheck makes New's checks again until none is pending, waiting longer
// each time, up to half a minute, and reports the outcome.
func (s *Store) recheck(eviction bool) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		time.Sleep(wait)
		ctx, cancel := context.WithTimeout(context.Background(), s.manage)
		_, pending, err := s.checkStart(ctx, eviction)
		cancel()
		switch {
		case err != nil:
			s.log.Error("redisstore: a check at start failed once its master answered", "error", err)
			return
		case pending == nil:
			s.log.Info("redisstore: every master answered and passed the checks at start")
			return
		}
	}
}

// unreachable describes a Redis that did not answer at start by its
// address, and by the likely cause when the client speaks TLS: a TLS
// handshake sent to a Redis without TLS is never answered.
func unreachable(client redis.UniversalClient, err error) error {
	var addr string
	var tls bool
	switch c := client.(type) {
	case *redis.Client:
		addr, tls = c.Options().Addr, c.Options().TLSConfig != nil
	case *redis.ClusterClient:
		addr, tls = strings.Join(c.Options().Addrs, ","), c.Options().TLSConfig != nil
	}
	hint := ""
	if tls && errors.Is(err, context.DeadlineExceeded) {
		hint = " (no answer to the TLS handshake: does it serve TLS on that port? rediss:// needs it)"
	}
	return fmt.Errorf("redisstore: cannot reach Redis at %s%s: %w", addr, hint, err)
}

// checkEviction reads the maxmemory-policy of the node c. fault is the
// failure of the call, err a policy refused.
func checkEviction(ctx context.Context, c *redis.Client) (fault, err error) {
	cfg, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	if breaker.Fault(err) {
		return err, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading maxmemory-policy (set Config.SkipEvictionCheck if your provider hides CONFIG): %w", err)
	}
	if policy := cfg["maxmemory-policy"]; strings.HasPrefix(policy, "allkeys-") {
		return nil, fmt.Errorf("%w: %s has maxmemory-policy %s; set it to noeviction", ErrEvicting, c.Options().Addr, policy)
	}
	return nil, nil
}

// The key layout.
//
// With namespace ns (default "keygate"), an account's keys share the hash
// tag {<account>} (the account ID, or "~" and its hex when it holds a
// brace or starts with "~"), so that a Cluster keeps each account in one
// slot, where one script creates, changes, rotates and counts its keys
// atomically, and spreads different accounts over every master:
//
//	ns:{acct}:r:<id>      record JSON, the record of truth
//	ns:{acct}:o           ZSET of the owner's IDs, scored by the instant
//	                      (µs) until which the key counts as active: its
//	                      expiry, +inf, or 0 once revoked; the per-owner
//	                      limit is a ZCOUNT inside the create script
//	ns:{acct}:ev          stream of the account's events, each with
//	                      fields k (key ID) and e (event JSON), trimmed to
//	                      [event.Retention] (see [Store.Events])
//	ns:{acct}:ek:<id>     LIST of key <id>'s event IDs, oldest first, to
//	                      keep [event.PerKey] of them
//	ns:{acct}:a           account JSON (see [Store.Account])
//	ns:{acct}:f:<fact>    "1": a fact recorded (see [Store.Once]), for the
//	                      events' retention
//
// A verification knows only the key's text, so each record has a lookup
// copy, read by [Store.Lookup] in one round trip, and each ID an index
// naming its account, with the key's usage counters. They live in the
// account's slot when the key's text, or the ID, starts with the
// account's route ([Store.Route]), which the key service puts there, so
// that everything a key's verification and changes touch is on its
// account's master; keys and IDs without a route (made before routes,
// or chosen by the host) keep them in slots of their own, as layout 2
// did:
//
//	ns:{<slot>}:h:<hex>   HASH: the record JSON and its version (see
//	                      change.go), by the SHA-256 hex of the key
//	ns:{<slot>}:i:<id>    the account ID
//	ns:{<slot>}:u:<id>    usage counters (see [Store.AddUsage])
//	ns:h:<sha256 hex>, ns:i:{<id>}, ns:u:{<id>}
//	                      the same, for keys and IDs without a route
//	ns:{<slot>}:exp       ZSET of the IDs of a slot's accounts with an
//	                      expiry, by expiry, and
//	ns:{<slot>}:rev       of the revoked ones, by revocation time, for
//	                      [Store.Purge] and [Store.Expiring] (see slots.go)
//	ns:layout             "2": the namespace holds this layout
//	ns:invalidate         pub/sub channel: the hash hex of every key that
//	                      changes, and "a:" and the ID of every account
//	                      changed
//	ns:invalidate:hb:<r>  pub/sub channel of one subscription's heartbeats
//	                      (see [Store.WatchChanges])

// tag returns name as a hash tag's content: the name itself, or "~" and
// its hex when it holds a brace (which would end the tag early), is empty
// or starts with "~", so that two names never share a tag's text.
func tag(name string) string {
	if name == "" || strings.ContainsAny(name, "{}") || strings.HasPrefix(name, "~") {
		return "~" + hex.EncodeToString([]byte(name))
	}
	return name
}

func (s *Store) account(owner string) string { return s.ns + "{" + tag(owner) + "}:" }

func (s *Store) recKey(owner, id string) string { return s.account(owner) + "r:" + id }
func (s *Store) ownerKey(owner string) string   { return s.account(owner) + "o" }
func (s *Store) eventKey(owner string) string   { return s.account(owner) + "ev" }
func (s *Store) keyEventsKey(owner, id string) string {
	return s.account(owner) + "ek:" + id
}

// copyKey returns the key of the lookup copy of the key whose hash is h
// (hex) and whose text carries route: in the slot route names, or, for
// a key without a route, in a slot of its own (layout 2's).
func (s *Store) copyKey(route, h string) string {
	if routable(route) {
		return s.routed(route, "h:"+h)
	}
	return s.ns + "h:" + h
}

// idKey returns the key of the index of id: in the slot of the route id
// starts with (see [Store.Route]), or in a slot of its own.
func (s *Store) idKey(id string) string {
	if route := idRoute(id); route != "" {
		return s.routed(route, "i:"+id)
	}
	return s.legacyIDKey(id)
}

// legacyIDKey is the index of id as layout 2 kept every ID's.
func (s *Store) legacyIDKey(id string) string { return s.ns + "i:{" + tag(id) + "}" }

// usageKey returns the key of id's usage counters, in its index's slot.
func (s *Store) usageKey(id string) string {
	if route := idRoute(id); route != "" {
		return s.routed(route, "u:"+id)
	}
	return s.ns + "u:{" + tag(id) + "}"
}

// routed returns the key rest in the slot route names.
func (s *Store) routed(route, rest string) string { return s.ns + "{" + route + "}:" + rest }

// eventJSON encodes ev for a script, "" for none.
func eventJSON(ev *event.Event) (string, error) {
	if ev == nil {
		return "", nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("redisstore: encode event: %w", err)
	}
	return string(b), nil
}

// eventArgs are the scripts' arguments that record ev of owner's: its
// time, the retention (both in milliseconds), the most events a key
// keeps, whether the outbox is on, and the owner.
func (s *Store) eventArgs(ev *event.Event, owner string) []any {
	var at int64
	if ev != nil {
		at = ev.At.UnixMilli()
	}
	outbox := ""
	if s.outbox {
		outbox = "1"
	}
	return []any{at, s.eventRetention.Milliseconds(), event.PerKey, outbox, owner}
}

// eventKeys are the keys of the scripts that record an event of key id
// of owner's: the account's stream, the key's event list, the slot's
// outbox set and the account's delivery state.
func (s *Store) eventKeys(owner, id string) []string {
	return []string{s.eventKey(owner), s.keyEventsKey(owner, id), s.slotKey(owner, "ob"), s.account(owner) + "od"}
}

// wire is the JSON form of a record. Version counts the record's
// changes, so that a copy never goes back to an older one.
type wire struct {
	apikey.Key
	Hash        string `json:"hash"`
	HashVersion int    `json:"hash_version"`
	Route       string `json:"route,omitempty"`
	Version     int64  `json:"store_version"`
}

func encode(rec *apikey.Record, version int64) (string, error) {
	b, err := json.Marshal(wire{Key: rec.Key, Hash: hexOf(rec.Hash), HashVersion: rec.HashVersion, Route: rec.Route, Version: version})
	if err != nil {
		return "", fmt.Errorf("redisstore: encode record %s: %w", rec.ID, err)
	}
	return string(b), nil
}

func decode(data string) (*apikey.Record, int64, error) {
	var w wire
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		return nil, 0, fmt.Errorf("redisstore: corrupt record: %w", err)
	}
	rec := &apikey.Record{Key: w.Key, HashVersion: w.HashVersion, Route: w.Route}
	if n, err := hex.Decode(rec.Hash[:], []byte(w.Hash)); err != nil || n != len(rec.Hash) || w.ID == "" || w.Owner == "" {
		return nil, 0, errors.New("redisstore: corrupt record: missing id, owner or hash")
	}
	return rec, w.Version, nil
}

func hexOf(h apikey.Hash) string { return hex.EncodeToString(h[:]) }

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

// expiry is when rec expires if it is to be in the expiry set (an
// unrevoked key with an expiry), zero otherwise.
func expiry(rec *apikey.Record) time.Time {
	if !rec.RevokedAt.IsZero() {
		return time.Time{}
	}
	return rec.ExpiresAt
}

// score is t as a set's score, in microseconds.
func score(t time.Time) float64 { return float64(t.UnixMicro()) }

func wrap(op string, err error) error { return fmt.Errorf("redisstore: %s: %w", op, err) }

// Lookup implements [apikey.Store] with one HMGET of the key's copy (and,
// only for a copy whose writer failed mid-change, the repair the package
// doc describes). A key issued with a route (see [Store.Route]) has its
// copy in the slot route names, its account's, so that verifying it
// needs only that master. A key issued without one (before routes) is
// not there: its copy of layout 2, in a slot of its own, is read then, a
// second round trip that unknown keys pay too, within the same Timeout.
func (s *Store) Lookup(caller context.Context, hash apikey.Hash, route string) (*apikey.Record, error) {
	ctx, cancel := context.WithTimeout(caller, s.timeout) // one bound for both reads
	defer cancel()
	h := hexOf(hash)
	routed, legacy := s.copyKey(route, h), s.copyKey("", h)
	rec, err := s.lookup(caller, ctx, routed, hash)
	if routed == legacy || !errors.Is(err, apikey.ErrNotFound) {
		return rec, err
	}
	return s.lookup(caller, ctx, legacy, hash)
}

// Route implements [apikey.Router]: three base62 characters that, as a
// hash tag, fall in the Cluster slot of owner's account (a single node
// has slots too), where the copies and ID indexes of the keys it routes
// are kept.
func (s *Store) Route(owner string) string { return slotTags()[slotOf(tag(owner))] }

// lookup reads the copy at key of the key whose hash is hash, within
// ctx, the caller's context bounded by Timeout.
func (s *Store) lookup(caller, ctx context.Context, key string, hash apikey.Hash) (*apikey.Record, error) {
	h := hexOf(hash)
	var vals []any
	err := s.breakers.Do(caller, nodeOf(ctx, s.client, key), func() (err error) {
		vals, err = s.client.HMGet(ctx, key, "r", "wd").Result()
		return err
	})
	if err != nil {
		return nil, wrap("lookup", err)
	}
	data, _ := vals[0].(string)
	if wd, _ := vals[1].(string); wd != "" && expired(wd) {
		if data, err = s.repair(ctx, key, h); err != nil {
			return nil, err
		}
	}
	if data == "" {
		return nil, apikey.ErrNotFound
	}
	rec, _, err := decode(data)
	if err != nil {
		return nil, err
	}
	if rec.Hash != hash {
		return nil, errors.New("redisstore: corrupt record: stored under another hash")
	}
	return rec, nil
}

// honoursDeadlines reports whether client ends a command at its
// context's deadline (ContextTimeoutEnabled). Without it go-redis waits
// for its own ReadTimeout, try after try, and no Timeout can bound a
// call. A client of another type is taken at its word.
func honoursDeadlines(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// bound returns ctx within [Config].ManagementTimeout.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.manage)
}

// nodeOf names the master serving key on a Cluster, "" on one node.
func nodeOf(ctx context.Context, client redis.UniversalClient, key string) string {
	if c, ok := client.(*redis.ClusterClient); ok {
		if node, err := c.MasterForKey(ctx, key); err == nil {
			return node.Options().Addr
		}
	}
	return ""
}

// expired reports whether a hold's deadline has passed.
func expired(deadline string) bool {
	d, err := strconv.ParseInt(deadline, 10, 64)
	return err != nil || d < time.Now().UnixMicro()
}

// repair writes the record of the copy at key (of hash h) into it and
// returns its JSON, "" when the record does not exist (the copy is then
// deleted).
func (s *Store) repair(ctx context.Context, key, h string) (string, error) {
	names, err := s.client.HMGet(ctx, key, "o", "i").Result()
	if err != nil {
		return "", wrap("lookup", err)
	}
	owner, _ := names[0].(string)
	id, _ := names[1].(string)
	data, err := s.client.Get(ctx, s.recKey(owner, id)).Result()
	var version int64
	switch {
	case errors.Is(err, redis.Nil):
		data = ""
	case err != nil:
		return "", wrap("lookup", err)
	default:
		var rec *apikey.Record
		if rec, version, err = decode(data); err != nil {
			return "", err
		}
		if hexOf(rec.Hash) != h {
			return "", errors.New("redisstore: corrupt record: stored under another hash")
		}
	}
	if _, err := s.sync(ctx, key, h, version, data); err != nil {
		return "", wrap("lookup", err)
	}
	return data, nil
}

// read returns the record id with its owner, JSON and version.
func (s *Store) read(ctx context.Context, id string) (owner, data string, rec *apikey.Record, version int64, err error) {
	owners, err := s.ownersOf(ctx, []string{id})
	if owner = owners[id]; err == nil && owner == "" {
		err = redis.Nil
	}
	if err == nil {
		data, err = s.client.Get(ctx, s.recKey(owner, id)).Result()
	}
	if errors.Is(err, redis.Nil) {
		return "", "", nil, 0, apikey.ErrNotFound
	}
	if err != nil {
		return "", "", nil, 0, wrap("get", err)
	}
	rec, version, err = decode(data)
	return owner, data, rec, version, err
}

// Get implements [apikey.Store]: the ID's index names the account, whose
// slot holds the record.
func (s *Store) Get(ctx context.Context, id string) (*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, _, rec, _, err := s.read(ctx, id)
	return rec, err
}

// GetOwned returns owner's record id, or [apikey.ErrNotFound] for an
// unknown ID and for another owner's alike: one GET in owner's slot,
// which holds only owner's records, so the time of the answer tells
// nothing either. An owner of "" matches any. [apikey.Service] uses it
// for its management calls.
func (s *Store) GetOwned(ctx context.Context, owner, id string) (*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if owner == "" {
		return s.Get(ctx, id)
	}
	data, err := s.client.Get(ctx, s.recKey(owner, id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, wrap("get", err)
	}
	rec, _, err := decode(data)
	if err == nil && (rec.ID != id || rec.Owner != owner) {
		return nil, fmt.Errorf("redisstore: corrupt record: %s holds another record", s.recKey(owner, id))
	}
	return rec, err
}

// List implements [apikey.Store]: the owner's set, then one MGET in the
// account's slot.
func (s *Store) List(ctx context.Context, owner string) ([]*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ids, err := s.client.ZRange(ctx, s.ownerKey(owner), 0, -1).Result()
	if err != nil {
		return nil, wrap("list", err)
	}
	recs := make([]*apikey.Record, 0, len(ids))
	if len(ids) == 0 {
		return recs, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.recKey(owner, id)
	}
	datas, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, wrap("list", err)
	}
	for _, d := range datas {
		if data, ok := d.(string); ok {
			rec, _, err := decode(data)
			if err != nil {
				return nil, err
			}
			recs = append(recs, rec)
		}
	}
	sortRecords(recs, func(r *apikey.Record) time.Time { return r.CreatedAt })
	return recs, nil
}

// getMany returns the records of ids that still exist, in two pipelined
// round trips: the ID indexes, then the records.
func (s *Store) getMany(ctx context.Context, op string, ids []string) ([]*apikey.Record, error) {
	recs := make([]*apikey.Record, 0, len(ids))
	if len(ids) == 0 {
		return recs, nil
	}
	owners, err := s.ownersOf(ctx, ids)
	if err != nil {
		return nil, wrap(op, err)
	}
	datas, err := s.getAll(ctx, ids, func(id string) string {
		if owners[id] == "" {
			return "" // deleted meanwhile
		}
		return s.recKey(owners[id], id)
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	for _, id := range ids {
		data, ok := datas[id]
		if !ok {
			continue
		}
		rec, _, err := decode(data)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// ownersOf returns the account of each of ids that has an index. An ID
// of layout 2's shaped like a routed one has its index at its old place:
// those missing are looked for there, in one more pipeline, for those
// only (none when there are none).
func (s *Store) ownersOf(ctx context.Context, ids []string) (map[string]string, error) {
	owners, err := s.getAll(ctx, ids, s.idKey)
	if err != nil {
		return nil, err
	}
	old, err := s.getAll(ctx, ids, func(id string) string {
		if legacy := s.legacyIDKey(id); owners[id] == "" && s.idKey(id) != legacy {
			return legacy
		}
		return ""
	})
	for id, owner := range old {
		owners[id] = owner
	}
	return owners, err
}

// getAll GETs the key of each name in one pipeline and returns the
// values found, by name. A name whose key is "" is skipped.
func (s *Store) getAll(ctx context.Context, names []string, key func(string) string) (map[string]string, error) {
	cmds := make(map[string]*redis.StringCmd, len(names))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, name := range names {
			if k := key(name); k != "" {
				cmds[name] = p.Get(ctx, k)
			}
		}
		return nil
	})
	out := make(map[string]string, len(cmds))
	for name, cmd := range cmds {
		switch v, err := cmd.Result(); {
		case err == nil:
			out[name] = v
		case !errors.Is(err, redis.Nil):
			return nil, err
		}
	}
	return out, nil
}

// Expiring implements [apikey.Store], from the expiry sets of every
// slot. It fails while a master does not answer: what it returned would
// miss that master's accounts.
func (s *Store) Expiring(ctx context.Context, from, to time.Time) ([]*apikey.Record, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	found, err := s.rangeSets(ctx, "exp",
		strconv.FormatInt(from.UnixMicro()-1, 10), // µs rounding; filtered exactly below
		strconv.FormatInt(to.UnixMicro()+1, 10), 0)
	if err != nil {
		return nil, wrap("expiring: the indexes of a master that did not answer", err)
	}
	ids := make([]string, 0, len(found))
	seen := make(map[string]bool, len(found)) // in a slot's set and layout 2's
	for _, e := range found {
		if !seen[e.id] {
			seen[e.id] = true
			ids = append(ids, e.id)
		}
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
