package apikey

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/internal/base62"
	"github.com/keygate/keygate/ratelimit"
)

// defaultMaxActiveKeys is the per-owner limit when [Config].MaxActiveKeys
// is 0.
const defaultMaxActiveKeys = 10

// Config configures a [Service]. The zero value of every field selects the
// default it names. The Service stores every time in UTC.
type Config struct {
	// Format is the text form of keys. The zero value is the default
	// format: prefix "kg", environments "live" (the default) and "test",
	// a 32-character body and a checksum, as kg_live_ followed by 38
	// characters. Set any field and the format is as stated, each
	// field's zero value its own default (no environments means none).
	Format FormatConfig
	// MaxActiveKeys caps the keys an owner may hold that are neither
	// revoked nor expired. Default 10; negative means
	// no limit.
	MaxActiveKeys int
	// Scopes are custom permissions accepted besides [Read], [Write] and
	// [Delete]: 1 to 64 characters of lower-case letters, digits and ":._-".
	Scopes []Permission
	// Plans are the rate-limit plans accounts and keys may name, with
	// their policies: the one place they are configured (the middleware
	// and manage read them from the Service). The default plan is a new
	// account's. Default none: accounts are then on plan "", which the
	// middleware limits by [ratelimit.DefaultPlans]'s default, and naming
	// a plan is an error, so that a typo never falls back to another plan.
	Plans *ratelimit.Plans
	// Endpoints lists the route patterns of the host's API ("GET
	// /items/{id}", or "/items/" for every method), for endpoint
	// restrictions. When set, every [Restrictions].AllowedEndpoints entry
	// must name one of them, or end in "*" and prefix one; a raw path
	// ("GET /items/42") is refused with the route it belongs to. Default
	// none: entries are checked for shape only.
	Endpoints []string
	// Peppers turns on keyed hashing (HMAC-SHA256) when not empty: the
	// first pepper hashes new keys and every one of them verifies old keys.
	// Default: plain SHA-256.
	Peppers []Pepper
	// VerifyUnpeppered keeps plain SHA-256 hashes verifying once Peppers is
	// set, to migrate a store that was filled without a pepper.
	VerifyUnpeppered bool
	// MaxLifetime, when positive, is the longest a key may live: a new
	// key without an expiry gets CreatedAt + MaxLifetime, a later expiry
	// is refused, an update cannot extend a key past it, and a rotation
	// gives the replacement a fresh lifetime. Default: no maximum.
	MaxLifetime time.Duration
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
	// NewID returns a new, unique key ID. Default: a random UUID (version 4).
	NewID func() string
	// OnRotatedKeyUsed, when set, is called by Verify for a key that a
	// rotation replaced and that still verifies in its grace period,
	// within the request: keep it quick (notice.Limits.RotatedKeyUsed
	// queues a key.rotation.old_key_used event).
	OnRotatedKeyUsed func(p Principal)
}

// Service is the key lifecycle: create, verify, list, update, disable,
// enable, revoke, rotate, delete, purge. Every change is an [event.Event] of
// the audit trail, when the store keeps one ([event.Store]). It applies
// every policy (validation, expiry, per-owner limits, ownership) and
// delegates persistence to a [Store]. It is safe for concurrent use.
type Service struct {
	store  Store
	format *keyFormat
	max    int
	life   time.Duration
	scopes map[Permission]bool
	plans  *ratelimit.Plans // Config.Plans, or the default ones
	// planNames are Config.Plans' names, the default first; none
	// without: accounts and keys then name no plan.
	planNames []string
	// defaultAccount is the account of an owner with none stored, shared
	// by their principals.
	defaultAccount *Account
	routes         []string
	schemes        []hashScheme // [0] hashes new keys; all verify
	// router is the store's routes, nil unless it routes and the format
	// leaves room for a route of routeLen characters.
	router   Router
	routeLen int
	routeIDs bool // IDs the Service makes carry the route
	now      func() time.Time
	newID    func() string
	// onRotated is Config.OnRotatedKeyUsed.
	onRotated func(p Principal)
}

// New returns a Service over store.
func New(store Store, cfg Config) (*Service, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	s := &Service{
		store:     store,
		max:       cfg.MaxActiveKeys,
		life:      cfg.MaxLifetime,
		scopes:    map[Permission]bool{Read: true, Write: true, Delete: true},
		plans:     ratelimit.DefaultPlans(),
		newID:     cfg.NewID,
		onRotated: cfg.OnRotatedKeyUsed,
	}
	f := cfg.Format
	if f.Prefix == "" && f.Environments == nil && f.BodyLength == 0 && !f.NoChecksum && f.DisplayLength == 0 {
		f.Environments = []string{"live", "test"}
	}
	var err error
	if s.format, err = newFormat(f); err != nil {
		return nil, err
	}
	if s.max == 0 {
		s.max = defaultMaxActiveKeys
	}
	if s.life < 0 {
		return nil, fmt.Errorf("%w: negative MaxLifetime", ErrInvalidConfig)
	}
	for _, p := range cfg.Scopes {
		if !validScopeName(p) {
			return nil, fmt.Errorf("%w: scope %q must be 1 to %d characters of a-z, 0-9 and \":._-\"",
				ErrInvalidConfig, p, maxScopeLength)
		}
		s.scopes[p] = true
	}
	if cfg.Plans != nil {
		s.plans, s.planNames = cfg.Plans, cfg.Plans.Names()
	}
	for _, p := range s.planNames {
		if !validToken(p, maxPlanLength) {
			return nil, fmt.Errorf("%w: plan %q must be 1 to %d characters of letters, digits and \"._:-\"",
				ErrInvalidConfig, p, maxPlanLength)
		}
	}
	for _, e := range cfg.Endpoints {
		route, ok := normalizeRoute(e)
		if !ok {
			return nil, fmt.Errorf("%w: endpoint %q is not a route pattern such as \"GET /items/{id}\"", ErrInvalidConfig, e)
		}
		s.routes = append(s.routes, route)
	}
	if s.schemes, err = newHashSchemes(cfg.Peppers, cfg.VerifyUnpeppered); err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	// Every stored time is UTC, whatever the clock's location.
	s.now = func() time.Time { return clock().UTC() }
	if s.newID == nil {
		s.newID = newUUID
		s.routeIDs = true
	}
	if r, ok := store.(Router); ok {
		// Routes have one length for every owner: any owner tells it.
		route := r.Route("acct")
		n := len(route)
		switch {
		case n == 0:
		case n > 4 || !base62.Valid(route):
			return nil, fmt.Errorf("%w: the store's routes are not 1 to 4 base62 characters", ErrInvalidConfig)
		case s.format.bodyLen-n >= minBodyLength:
			s.router, s.routeLen = r, n
		}
	}
	s.defaultAccount = &Account{Plan: s.defaultPlan()}
	return s, nil
}

// Plans returns the plans that limit accounts and keys: [Config].Plans,
// or when it is nil [ratelimit.DefaultPlans], whose default then limits
// every account (and none may name a plan).
func (s *Service) Plans() *ratelimit.Plans { return s.plans }

// CreateParams describes a key to issue. Only Owner is required.
type CreateParams struct {
	// Owner is the account the key belongs to (1 to 128 characters).
	Owner string
	// ID, when set, is used instead of a generated one: 1 to 64 letters,
	// digits and "._-". A stored ID fails with [ErrDuplicate].
	ID string
	// Name (at most 200 characters) and Description (at most 500) are free
	// text.
	Name        string
	Description string
	// Permissions granted; unknown names fail. Empty grants none.
	Permissions []Permission
	// ProjectID limits the key to one project; "" is account-wide.
	ProjectID string
	// Environment selects the key's environment segment; "" is the format's
	// default.
	Environment string
	// Plan names a plan of [Config].Plans that caps this key on its own,
	// within its account's plan; "" for none.
	Plan string
	// Limits are custom windows that cap this key on its own instead of
	// Plan's, validated as an [Account]'s are; none by default.
	Limits []ratelimit.Window
	// NotBefore and ExpiresAt bound when the key verifies; zero means no
	// bound. ExpiresAt must be in the future and after NotBefore, and
	// both within the years 1970 to 9999.
	NotBefore time.Time
	ExpiresAt time.Time
	// Restrictions narrow where the key may be used.
	Restrictions Restrictions
	// Metadata is free-form: at most 50 entries, names of 1 to 64 and values
	// of at most 512 characters.
	Metadata map[string]string
}

// Issued is the result of [Service.Create] and [Service.Rotate]: the key's
// description and its plaintext, which exists nowhere else. Printing,
// logging or JSON-encoding an Issued shows the secret as "[REDACTED]".
type Issued struct {
	Key    Key
	Secret Secret
}

// Create validates p, issues a key and stores its hash. Invalid input fails
// with an [*InputError] and stores nothing; an owner at the limit gets a
// [*LimitError], which matches [ErrTooManyKeys].
func (s *Service) Create(ctx context.Context, p CreateParams) (Issued, error) {
	now := s.now()
	k, err := s.validate(p, now)
	if err != nil {
		return Issued{}, err
	}
	if k.ID == "" {
		k.ID = s.makeID(k.Owner)
	}
	k.CreatedAt = now
	if s.life > 0 && k.ExpiresAt.IsZero() {
		k.ExpiresAt = now.Add(s.life)
	}
	if err := s.checkLifetime(&k); err != nil {
		return Issued{}, err
	}
	rec, secret, err := s.issue(k)
	if err != nil {
		return Issued{}, err
	}
	if err := s.store.Create(ctx, rec, s.max, now, newEvent(ctx, event.KeyCreated, &Key{}, &rec.Key, now)); err != nil {
		if errors.Is(err, ErrTooManyKeys) {
			return Issued{}, &LimitError{Max: s.max}
		}
		return Issued{}, fmt.Errorf("apikey: create: %w", err)
	}
	return Issued{Key: rec.Key.clone(), Secret: secret}, nil
}

// issue generates the key text for k and returns its record.
func (s *Service) issue(k Key) (*Record, Secret, error) {
	route := ""
	if s.router != nil {
		// A route of another length or alphabet would make a key that
		// never parses, or never verifies: refuse it instead.
		if route = s.router.Route(k.Owner); len(route) != s.routeLen || !base62.Valid(route) {
			return nil, Secret{}, fmt.Errorf("apikey: the store's route for %q is not %d base62 characters", k.Owner, s.routeLen)
		}
	}
	secret, err := s.format.generate(k.Environment, route)
	if err != nil {
		return nil, Secret{}, err
	}
	k.DisplayPrefix = secret.displayPrefix()
	scheme := &s.schemes[0]
	return &Record{Key: k, Hash: scheme.sum(secret.Reveal()), HashVersion: scheme.version, Route: route}, secret, nil
}

// makeID returns a new ID for a key of owner: the store's route and "_"
// before a random UUID, when the store routes and the ID is the Service's
// to make.
func (s *Service) makeID(owner string) string {
	if s.router != nil && s.routeIDs {
		return s.router.Route(owner) + "_" + s.newID()
	}
	return s.newID()
}

// Verify checks a presented key: its shape (no store access for garbage),
// its hash in the store, then revocation, being disabled, expiry and
// NotBefore. It returns the key's [Principal], or an error matching
// [ErrMalformed], [ErrInvalidKey] (unknown, deleted, revoked or disabled,
// deliberately alike; a disabled key's error also matches [ErrDisabled]),
// [ErrExpired] or [ErrNotYetValid]. Any other error is a store failure,
// which a caller should answer with 503, not 401. When the store keeps
// accounts ([AccountStore]), Verify also reads the key's account, for
// [Principal.Account]: put store/cachestore in front of a networked
// store so that neither read is a round trip.
func (s *Service) Verify(ctx context.Context, key string) (Principal, error) {
	parsed, err := s.format.parse(key)
	if err != nil {
		return Principal{}, err
	}
	route := ""
	if s.router != nil {
		route = key[parsed.body : parsed.body+s.routeLen]
	}
	rec, err := s.lookup(ctx, key, route)
	if err != nil {
		return Principal{}, err
	}
	if !rec.RevokedAt.IsZero() {
		return Principal{}, ErrInvalidKey
	}
	if !rec.DisabledAt.IsZero() {
		return Principal{}, disabledError{}
	}
	// Most keys have no time bounds; they verify without reading the clock.
	if !rec.ExpiresAt.IsZero() || !rec.NotBefore.IsZero() {
		now := s.now()
		if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
			return Principal{}, ErrExpired
		}
		if now.Before(rec.NotBefore) {
			return Principal{}, ErrNotYetValid
		}
	}
	acct := s.defaultAccount
	if as, ok := s.store.(AccountStore); ok {
		stored, err := as.Account(ctx, rec.Owner)
		switch {
		case err == nil && stored != nil:
			acct = stored
		case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errors.ErrUnsupported):
			return Principal{}, fmt.Errorf("apikey: verify: reading the account: %w", err)
		}
	}
	p := Principal{rec: rec, acct: acct}
	if rec.ReplacedBy != "" && s.onRotated != nil {
		s.onRotated(p)
	}
	return p, nil
}

// lookup finds key's record under each hash scheme in turn, newest
// first, by what its text holds where routes are ("" when the store does
// not route).
func (s *Service) lookup(ctx context.Context, key, route string) (*Record, error) {
	for i := range s.schemes {
		rec, err := s.store.Lookup(ctx, s.schemes[i].sum(key), route)
		if err == nil {
			if rec == nil {
				return nil, errNoRecord
			}
			return rec, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("apikey: verify: %w", err)
		}
	}
	return nil, ErrInvalidKey
}

// owned returns the record id if it belongs to owner. Another owner's key
// is reported as [ErrNotFound], so IDs reveal nothing across accounts.
func (s *Service) owned(ctx context.Context, owner, id string) (*Record, error) {
	if owner == "" || id == "" {
		return nil, ErrNotFound
	}
	if err := checkAccountID(owner); err != nil {
		return nil, err
	}
	var rec *Record
	var err error
	if og, ok := s.store.(OwnedGetter); ok {
		rec, err = og.GetOwned(ctx, owner, id)
	} else {
		rec, err = s.store.Get(ctx, id)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("apikey: get: %w", err)
	case rec == nil:
		return nil, errNoRecord
	case rec.Owner != owner:
		return nil, ErrNotFound
	}
	return rec, nil
}

// Get returns owner's key id, or [ErrNotFound].
func (s *Service) Get(ctx context.Context, owner, id string) (Key, error) {
	rec, err := s.owned(ctx, owner, id)
	if err != nil {
		return Key{}, err
	}
	return rec.Key.clone(), nil
}

// Revoke revokes owner's key id at once: from this call's return on, it
// fails verification with [ErrInvalidKey] (a caching layer may add its own
// bounded delay). Revoking a revoked key succeeds.
func (s *Service) Revoke(ctx context.Context, owner, id string) error {
	old, err := s.owned(ctx, owner, id)
	if err != nil {
		return err
	}
	now := s.now()
	next := old.Key
	next.RevokedAt = now
	if err := s.store.Revoke(ctx, id, now, newEvent(ctx, event.KeyRevoked, &old.Key, &next, now)); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("apikey: revoke: %w", err)
	}
	return nil
}

// Rotate issues a replacement for owner's key id with the same name,
// description, permissions, project, environment, plan, limits, expiry
// (a fresh lifetime under [Config].MaxLifetime), restrictions and
// metadata. With grace 0 the old key stops verifying at
// once; otherwise it keeps verifying for grace (never past its own
// expiry). Rotating a revoked key fails with [ErrRevoked], an already
// rotated one with [ErrRotated], an expired one with [ErrExpired] and a
// disabled one with [ErrDisabled]. The
// replacement takes the old key's place in the owner's limit; but while
// both verify, during the grace period, both count, so an owner at the
// limit gets a [*LimitError] for a rotation with grace (rotate without
// grace, or revoke a key first).
func (s *Service) Rotate(ctx context.Context, owner, id string, grace time.Duration) (Issued, error) {
	if grace < 0 {
		return Issued{}, invalid("grace_period", "must not be negative")
	}
	old, err := s.owned(ctx, owner, id)
	if err != nil {
		return Issued{}, err
	}
	now := s.now()
	switch old.Status(now) {
	case StatusRevoked:
		return Issued{}, ErrRevoked
	case StatusRotated:
		return Issued{}, ErrRotated
	case StatusExpired:
		if old.ReplacedBy != "" {
			return Issued{}, ErrRotated
		}
		return Issued{}, ErrExpired
	case StatusDisabled:
		return Issued{}, ErrDisabled
	}
	k := old.Key.clone()
	if k.Lineage == "" {
		k.Lineage = old.ID
	}
	k.ID = s.makeID(k.Owner)
	k.CreatedAt = now
	k.NotBefore = time.Time{}
	if s.life > 0 {
		k.ExpiresAt = now.Add(s.life)
	}
	rec, secret, err := s.issue(k)
	if err != nil {
		return Issued{}, err
	}
	retired := *old
	if err := retired.Retire(old, rec.ID, now.Add(grace)); err != nil {
		return Issued{}, err
	}
	ev := newEvent(ctx, event.KeyRotated, &old.Key, &retired.Key, now)
	if err := s.store.Rotate(ctx, old, now.Add(grace), rec, s.max, now, ev); err != nil {
		switch {
		case errors.Is(err, ErrTooManyKeys):
			return Issued{}, &LimitError{Max: s.max}
		case errors.Is(err, ErrNotFound):
			return Issued{}, ErrNotFound // deleted meanwhile
		case errors.Is(err, ErrRevoked):
			return Issued{}, ErrRevoked
		case errors.Is(err, ErrRotated):
			return Issued{}, ErrRotated
		case errors.Is(err, ErrConflict):
			return Issued{}, ErrConflict
		}
		return Issued{}, fmt.Errorf("apikey: rotate: %w", err)
	}
	return Issued{Key: rec.Key.clone(), Secret: secret}, nil
}

// Delete removes owner's key id for good; afterwards it fails verification
// exactly like a key that never existed. Prefer [Service.Revoke], which
// keeps the record for audit.
func (s *Service) Delete(ctx context.Context, owner, id string) error {
	old, err := s.owned(ctx, owner, id)
	if err != nil {
		return err
	}
	if err := s.store.Delete(ctx, id, newEvent(ctx, event.KeyDeleted, &old.Key, &Key{}, s.now())); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrNotFound
		}
		return fmt.Errorf("apikey: delete: %w", err)
	}
	return nil
}

// ExpiringWithin returns the unrevoked keys of every owner that expire
// within d from now, soonest first, for expiry notifications.
func (s *Service) ExpiringWithin(ctx context.Context, d time.Duration) ([]Key, error) {
	if d <= 0 {
		return nil, invalid("within", "must be positive")
	}
	now := s.now()
	recs, err := s.store.Expiring(ctx, now, now.Add(d))
	if err != nil {
		return nil, fmt.Errorf("apikey: expiring: %w", err)
	}
	keys := make([]Key, len(recs))
	for i, rec := range recs {
		keys[i] = rec.Key.clone()
	}
	return keys, nil
}

// newUUID returns a random version 4 UUID in its canonical text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails; see crypto/rand.Read
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
