package apikey_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

var now = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// plansOf returns plans of the given names, the first the default, each
// 10 requests a minute.
func plansOf(names ...string) *ratelimit.Plans {
	var ps []*ratelimit.Policy
	for _, n := range names {
		ps = append(ps, mustPolicy(n, ratelimit.PerMinute(10)))
	}
	plans, err := ratelimit.NewPlans(ps...)
	if err != nil {
		panic(err)
	}
	return plans
}

func newTestService(t testing.TB, cfg apikey.Config) (*apikey.Service, *memstore.Store, *testclock.Clock) {
	t.Helper()
	clock := testclock.New(now)
	if cfg.Clock == nil {
		cfg.Clock = clock.Now
	}
	store := memstore.New()
	svc, err := apikey.New(store, cfg)
	require.NoError(t, err)
	return svc, store, clock
}

func TestCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, store, _ := newTestService(t, apikey.Config{Scopes: []apikey.Permission{"reports:export"}, Plans: plansOf("free", "starter")})
	existing, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", ID: "key_taken"})
	require.NoError(t, err)

	valid := func(mod func(*apikey.CreateParams)) apikey.CreateParams {
		p := apikey.CreateParams{Owner: "acct"}
		mod(&p)
		return p
	}
	tests := []struct {
		name  string
		p     apikey.CreateParams
		field string
		err   error
	}{
		{"no owner", apikey.CreateParams{}, "owner", nil},
		{"owner with newline", valid(func(p *apikey.CreateParams) { p.Owner = "a\nb" }), "owner", nil},
		{"owner too long", valid(func(p *apikey.CreateParams) { p.Owner = strings.Repeat("a", 129) }), "owner", nil},
		{"description of 501 characters", valid(func(p *apikey.CreateParams) { p.Description = strings.Repeat("é", 501) }), "description", nil},
		{"description not UTF-8", valid(func(p *apikey.CreateParams) { p.Description = "\xff" }), "description", nil},
		{"description with NUL", valid(func(p *apikey.CreateParams) { p.Description = "a\x00" }), "description", nil},
		{"name too long", valid(func(p *apikey.CreateParams) { p.Name = strings.Repeat("n", 201) }), "name", nil},
		{"unknown permission", valid(func(p *apikey.CreateParams) { p.Permissions = []apikey.Permission{"admin"} }), "permissions", nil},
		{"upper-case permission", valid(func(p *apikey.CreateParams) { p.Permissions = []apikey.Permission{"READ"} }), "permissions", nil},
		{"expiry in the past", valid(func(p *apikey.CreateParams) { p.ExpiresAt = now.Add(-time.Second) }), "expires_at", nil},
		{"expiry now", valid(func(p *apikey.CreateParams) { p.ExpiresAt = now }), "expires_at", nil},
		{"expiry before not-before", valid(func(p *apikey.CreateParams) {
			p.NotBefore, p.ExpiresAt = now.Add(2*time.Hour), now.Add(time.Hour)
		}), "expires_at", nil},
		{"unknown environment", valid(func(p *apikey.CreateParams) { p.Environment = "prod" }), "environment", nil},
		{"unknown plan", valid(func(p *apikey.CreateParams) { p.Plan = "enterprise" }), "plan", nil},
		{"project with slash", valid(func(p *apikey.CreateParams) { p.ProjectID = "a/b" }), "project_id", nil},
		{"ID with space", valid(func(p *apikey.CreateParams) { p.ID = "a b" }), "id", nil},
		{"invalid CIDR", valid(func(p *apikey.CreateParams) { p.Restrictions.AllowedIPs = []netip.Prefix{{}} }), "allowed_ips", nil},
		{"referrer with path chars", valid(func(p *apikey.CreateParams) { p.Restrictions.AllowedReferrers = []string{"exa mple.com"} }), "allowed_referrers", nil},
		{"endpoint without method", valid(func(p *apikey.CreateParams) { p.Restrictions.AllowedEndpoints = []string{"/api"} }), "allowed_endpoints", nil},
		{"endpoint without slash", valid(func(p *apikey.CreateParams) { p.Restrictions.AllowedEndpoints = []string{"GET api"} }), "allowed_endpoints", nil},
		{"too many metadata entries", valid(func(p *apikey.CreateParams) {
			p.Metadata = map[string]string{}
			for i := range 51 {
				p.Metadata[strings.Repeat("k", i+1)] = "v"
			}
		}), "metadata", nil},
		{"metadata value too long", valid(func(p *apikey.CreateParams) { p.Metadata = map[string]string{"k": strings.Repeat("v", 513)} }), "metadata", nil},
		{"duplicate ID", valid(func(p *apikey.CreateParams) { p.ID = existing.Key.ID }), "", apikey.ErrDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issued, err := svc.Create(ctx, tc.p)
			require.Error(t, err)
			assert.Empty(t, issued.Secret.Reveal())
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				var ie *apikey.InputError
				require.ErrorAs(t, err, &ie)
				require.ErrorIs(t, err, apikey.ErrInvalidInput)
				assert.Equal(t, tc.field, ie.Field)
			}
		})
	}
	keys, err := store.List(ctx, "acct")
	require.NoError(t, err)
	assert.Len(t, keys, 1, "nothing but the first key was stored")
}

func TestCreateNormalizes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{Scopes: []apikey.Permission{"reports:export"}, Plans: plansOf("free", "starter")})
	ips := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("192.168.0.7/32"), netip.MustParsePrefix("2001:db8::1/32")}
	meta := map[string]string{"team": "core"}
	perms := []apikey.Permission{apikey.Write, apikey.Read, apikey.Write, "reports:export"}
	issued, err := svc.Create(ctx, apikey.CreateParams{
		Owner:       "acct",
		Description: strings.Repeat("é", 500),
		Permissions: perms,
		Restrictions: apikey.Restrictions{
			AllowedIPs:       append(ips, netip.MustParsePrefix("::ffff:10.0.0.0/104")),
			AllowedReferrers: []string{"https://App.Example.com:8443/path", "*.example.org", "app.example.com"},
			AllowedEndpoints: []string{"get /api/v1/recordings", "* /api/v1/health"},
		},
		Metadata: meta,
	})
	require.NoError(t, err)
	k := issued.Key
	assert.Equal(t, apikey.Permissions{apikey.Read, "reports:export", apikey.Write}, k.Permissions)
	assert.Empty(t, k.Plan, "a key has no cap of its own unless asked")
	assert.Equal(t, "live", k.Environment)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.7/32"), netip.MustParsePrefix("2001:db8::/32"),
	}, k.Restrictions.AllowedIPs, "host bits cleared, mapped IPv4 folded into 10.0.0.0/8")
	assert.Equal(t, []string{"app.example.com", "*.example.org"}, k.Restrictions.AllowedReferrers)
	assert.Equal(t, []string{"GET /api/v1/recordings", "* /api/v1/health"}, k.Restrictions.AllowedEndpoints)
	assert.Equal(t, now, k.CreatedAt)
	assert.Equal(t, issued.Secret.Reveal()[:14], k.DisplayPrefix)

	// The caller's slices and maps are not shared with the stored record.
	perms[0] = apikey.Delete
	meta["team"] = "evil"
	got, err := svc.Get(ctx, "acct", k.ID)
	require.NoError(t, err)
	assert.Equal(t, k.Permissions, got.Permissions)
	assert.Equal(t, "core", got.Metadata["team"])
	got.Permissions[0] = apikey.Delete
	p, err := svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err)
	assert.False(t, p.Has(apikey.Delete), "a returned Key is a copy")
}

// Times a store could not keep are refused: a key that expires in the
// year 10000 could be stored but never shown, listed or revoked.
func TestTimesAreInRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, store, _ := newTestService(t, apikey.Config{})
	year10000 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", -(23*3600+59*60)))
	for name, p := range map[string]apikey.CreateParams{
		"expiry in the year 10000":     {ExpiresAt: year10000},
		"not-before in the year 10000": {NotBefore: year10000},
		"not-before before 1970":       {NotBefore: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		"not-before in the year 1":     {NotBefore: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		p.Owner = "acct"
		_, err := svc.Create(ctx, p)
		require.ErrorIs(t, err, apikey.ErrInvalidInput, name)
	}
	keys, err := store.List(ctx, "acct")
	require.NoError(t, err)
	assert.Empty(t, keys, "nothing stored")
	_, err = svc.Create(ctx, apikey.CreateParams{Owner: "acct", ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err, "the last day of 9999 is fine")
}

// A plan name the service does not know is an error, never a silent
// fallback to another plan.
func TestPlansAreChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{Plans: ratelimit.DefaultPlans()})
	for _, plan := range []string{"Business", "enterprise", " free"} {
		_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", Plan: plan})
		var ie *apikey.InputError
		require.ErrorAs(t, err, &ie, plan)
		assert.Equal(t, "plan", ie.Field)
		assert.Contains(t, ie.Reason, "unknown plan")
	}
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	assert.Empty(t, issued.Key.Plan, "no cap unless asked")
	acct, err := svc.Account(ctx, "acct")
	require.NoError(t, err)
	assert.Equal(t, "free", acct.Plan, "the first plan is a new account's")
	assert.Equal(t, []string{"free", "starter", "business"}, svc.Plans().Names())

	plain, _, _ := newTestService(t, apikey.Config{})
	_, err = plain.Create(ctx, apikey.CreateParams{Owner: "acct", Plan: "starter"})
	require.ErrorIs(t, err, apikey.ErrInvalidInput, "a service without plans refuses any")
	def, _ := plain.Plans().Lookup("")
	assert.Equal(t, "free", def.Name(), "without plans, the default ones limit")
}

// With the host's routes configured, an endpoint restriction that can
// never match is refused with the reason.
func TestEndpointRestrictionsNameRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{Endpoints: []string{
		"GET /api/v1/recordings", "GET /api/v1/recordings/{id}", "DELETE /api/v1/recordings/{id}", "/api/v1/health",
	}})
	tests := []struct {
		entry, reason string
	}{
		{"GET /api/v1/recordings", ""},
		{"get /api/v1/recordings/{id}", ""},
		{"* /api/v1/recordings/{id}", ""},
		{"POST /api/v1/health", ""},
		{"GET /api/v1/rec*", ""},
		{"GET /api/v1/recordings/rec_2", `names a path, not a route; use the route pattern "GET /api/v1/recordings/{id}"`},
		{"POST /api/v1/recordings", "matches no route"},
		{"GET /api/v2/*", "matches no route"},
	}
	for _, tc := range tests {
		_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", Restrictions: apikey.Restrictions{AllowedEndpoints: []string{tc.entry}}})
		if tc.reason == "" {
			require.NoError(t, err, tc.entry)
			continue
		}
		var ie *apikey.InputError
		require.ErrorAs(t, err, &ie, tc.entry)
		assert.Equal(t, "allowed_endpoints", ie.Field)
		assert.Contains(t, ie.Reason, tc.reason, tc.entry)
	}
	_, err := apikey.New(memstore.New(), apikey.Config{Endpoints: []string{"GET items"}})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

func TestVerifyStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, clock := newTestService(t, apikey.Config{})
	bounded, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", NotBefore: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	key := bounded.Secret.Reveal()

	steps := []struct {
		advance time.Duration
		want    error
		status  apikey.Status
	}{
		{0, apikey.ErrNotYetValid, apikey.StatusPending},
		{time.Minute - time.Nanosecond, apikey.ErrNotYetValid, apikey.StatusPending},
		{time.Nanosecond, nil, apikey.StatusActive},
		{59*time.Minute - time.Nanosecond, nil, apikey.StatusActive},
		{time.Nanosecond, apikey.ErrExpired, apikey.StatusExpired},
	}
	for i, step := range steps {
		clock.Advance(step.advance)
		_, err := svc.Verify(ctx, key)
		if step.want == nil {
			require.NoError(t, err, "step %d", i)
		} else {
			require.ErrorIs(t, err, step.want, "step %d", i)
		}
		got, err := svc.Get(ctx, "acct", bounded.Key.ID)
		require.NoError(t, err)
		assert.Equal(t, step.status, got.Status(clock.Now()), "step %d", i)
	}
}

// Unknown, revoked and deleted keys fail with one error; a store failure
// is not confused with any of them.
func TestVerifyFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{})
	revoked, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	require.NoError(t, svc.Revoke(ctx, "acct", revoked.Key.ID))
	require.NoError(t, svc.Revoke(ctx, "acct", revoked.Key.ID), "revoke is idempotent")
	deleted, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	require.NoError(t, svc.Delete(ctx, "acct", deleted.Key.ID))
	unknown, err := svc.Format().Generate("")
	require.NoError(t, err)

	var msgs []string
	for _, key := range []string{revoked.Secret.Reveal(), deleted.Secret.Reveal(), unknown.Reveal()} {
		_, err := svc.Verify(ctx, key)
		require.ErrorIs(t, err, apikey.ErrInvalidKey)
		msgs = append(msgs, err.Error())
	}
	assert.Equal(t, []string{msgs[0], msgs[0], msgs[0]}, msgs)

	broken, err := apikey.New(failingStore{}, apikey.Config{})
	require.NoError(t, err)
	_, err = broken.Verify(ctx, unknown.Reveal())
	require.Error(t, err)
	assert.NotErrorIs(t, err, apikey.ErrInvalidKey)
	assert.ErrorIs(t, err, errDown)
}

var errDown = errors.New("store down")

// failingStore fails every call, as an unreachable database would.
type failingStore struct{ apikey.Store }

func (failingStore) Lookup(context.Context, apikey.Hash, string) (*apikey.Record, error) {
	return nil, errDown
}

func TestRotateRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, clock := newTestService(t, apikey.Config{})
	k, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	_, err = svc.Rotate(ctx, "acct", k.Key.ID, -time.Second)
	require.ErrorIs(t, err, apikey.ErrInvalidInput)
	_, err = svc.Rotate(ctx, "acct", "nope", 0)
	require.ErrorIs(t, err, apikey.ErrNotFound)

	// The replacement inherits the expiry; a grace period never extends it.
	repl, err := svc.Rotate(ctx, "acct", k.Key.ID, 2*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, now.Add(time.Hour), repl.Key.ExpiresAt)
	old, err := svc.Get(ctx, "acct", k.Key.ID)
	require.NoError(t, err)
	assert.Equal(t, now.Add(time.Hour), old.ExpiresAt)
	assert.Equal(t, repl.Key.ID, old.ReplacedBy)

	clock.Advance(time.Hour)
	_, err = svc.Rotate(ctx, "acct", repl.Key.ID, 0)
	require.ErrorIs(t, err, apikey.ErrExpired)

	r, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	require.NoError(t, svc.Revoke(ctx, "acct", r.Key.ID))
	_, err = svc.Rotate(ctx, "acct", r.Key.ID, 0)
	require.ErrorIs(t, err, apikey.ErrRevoked)
}

// Rotation at the limit succeeds without grace, where the replacement
// takes the old key's place, and fails with grace, where both would
// verify for a while.
func TestRotateAtLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{MaxActiveKeys: 2})
	a, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	_, err = svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	_, err = svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.ErrorIs(t, err, apikey.ErrTooManyKeys)
	assert.Contains(t, err.Error(), "(2)")
	_, err = svc.Rotate(ctx, "acct", a.Key.ID, time.Hour)
	var le *apikey.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 2, le.Max)
	_, err = svc.Rotate(ctx, "acct", a.Key.ID, 0)
	require.NoError(t, err)
}

func TestListAndExpiring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{MaxActiveKeys: -1})
	for i := range 12 {
		_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", ExpiresAt: now.Add(time.Duration(i+1) * 24 * time.Hour)})
		require.NoError(t, err, "a negative limit means none")
	}
	page, err := svc.ListPage(ctx, "acct", "", 100)
	keys := page.Items
	require.NoError(t, err)
	assert.Len(t, keys, 12)
	soon, err := svc.ExpiringWithin(ctx, 72*time.Hour)
	require.NoError(t, err)
	require.Len(t, soon, 2, "keys expiring at +24h and +48h; +72h is outside [now, now+72h)")
	assert.True(t, soon[0].ExpiresAt.Before(soon[1].ExpiresAt))
	_, err = svc.ExpiringWithin(ctx, 0)
	require.ErrorIs(t, err, apikey.ErrInvalidInput)
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	_, err := apikey.New(nil, apikey.Config{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	_, err = apikey.New(memstore.New(), apikey.Config{Scopes: []apikey.Permission{"Bad Scope"}})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	_, err = apikey.New(memstore.New(), apikey.Config{Plans: plansOf("has space")})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

func TestVerifyAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{})
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", Permissions: []apikey.Permission{apikey.Read}})
	require.NoError(t, err)
	expiring, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct", ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	unknown, err := svc.Format().Generate("")
	require.NoError(t, err)
	for name, key := range map[string]string{
		"hit": issued.Secret.Reveal(), "hit with expiry": expiring.Secret.Reveal(),
		"miss": unknown.Reveal(), "malformed": "kg_live_garbage",
	} {
		allocs := testing.AllocsPerRun(200, func() {
			p, err := svc.Verify(ctx, key)
			if err == nil && !p.Has(apikey.Read) && name == "hit" {
				t.Fatal("lost permission")
			}
		})
		assert.Zero(t, allocs, name)
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _, _ := newTestService(t, apikey.Config{Plans: plansOf("free", "starter")})
	issued, err := svc.Create(ctx, apikey.CreateParams{
		Owner: "acct", ProjectID: "proj_1", Plan: "starter", Permissions: []apikey.Permission{apikey.Read},
		ExpiresAt: now.Add(time.Hour), Metadata: map[string]string{"team": "core"},
		Restrictions: apikey.Restrictions{AllowedReferrers: []string{"app.example.com"}},
	})
	require.NoError(t, err)
	p, err := svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err)
	assert.Equal(t, issued.Key.ID, p.KeyID())
	assert.Equal(t, "acct", p.Owner())
	assert.Equal(t, issued.Key.DisplayPrefix, p.Key().DisplayPrefix)
	assert.Equal(t, "live", p.Key().Environment)
	assert.Equal(t, "starter", p.Plan())
	assert.Equal(t, now.Add(time.Hour), p.Key().ExpiresAt)
	assert.True(t, p.CanAccessProject("proj_1"))
	assert.False(t, p.CanAccessProject("proj_2"))
	assert.False(t, p.Restrictions().IsZero())
	assert.True(t, p.Restrictions().AllowsReferrer("https://app.example.com/x"))
	assert.Equal(t, "core", p.Key().Metadata["team"])

	k := p.Key()
	k.Permissions[0] = apikey.Delete
	k.Metadata["team"] = "evil"
	assert.False(t, p.Has(apikey.Delete), "Key returns a copy")
	assert.Equal(t, "core", p.Key().Metadata["team"])

	var zero apikey.Principal
	assert.False(t, zero.Has(apikey.Read))
	assert.Empty(t, zero.Owner())
	assert.True(t, zero.CanAccessProject("anything"), "the zero principal is account-wide but has no permissions")
}

func TestRecordRetire(t *testing.T) {
	later, sooner := now.Add(time.Hour), now.Add(time.Minute)
	tests := []struct {
		name        string
		rec         apikey.Record
		wantErr     error
		wantExpires time.Time
		read        *apikey.Record // what the caller read; default rec itself
	}{
		{"never expiring", apikey.Record{}, nil, later, nil},
		{"expiring after the grace", apikey.Record{Key: apikey.Key{ExpiresAt: now.Add(2 * time.Hour)}}, nil, later, nil},
		{"expiring sooner keeps its expiry", apikey.Record{Key: apikey.Key{ExpiresAt: sooner}}, nil, sooner, nil},
		{"revoked", apikey.Record{Key: apikey.Key{RevokedAt: now}}, apikey.ErrRevoked, time.Time{}, nil},
		{"already replaced", apikey.Record{Key: apikey.Key{ReplacedBy: "other"}}, apikey.ErrRotated, time.Time{}, nil},
		{"changed since it was read", apikey.Record{Key: apikey.Key{Name: "renamed"}}, apikey.ErrConflict, time.Time{}, &apikey.Record{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.rec
			read := tc.read
			if read == nil {
				read = &before
			}
			err := tc.rec.Retire(read, "new", later)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Equal(t, before, tc.rec, "a refused retirement changes nothing")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "new", tc.rec.ReplacedBy)
			assert.Equal(t, tc.wantExpires, tc.rec.ExpiresAt)
		})
	}
}

// mustPolicy returns the policy of windows, which are valid.
func mustPolicy(name string, windows ...ratelimit.Window) *ratelimit.Policy {
	p, err := ratelimit.NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}

// routed is a memory store that routes every owner to route.
type routed struct {
	*memstore.Store
	route string
}

func (r routed) Route(owner string) string {
	if owner == "odd" {
		return r.route[:1] // breaks the contract: one length for every owner
	}
	return r.route
}

// A store that routes gets its route at the start of the keys' bodies and
// of the IDs the Service makes, when the body has room for it beside 22
// random characters; a route that is not 1 to 4 base62 characters is a
// configuration error.
func TestRoutes(t *testing.T) {
	ctx := context.Background()
	svc, err := apikey.New(routed{memstore.New(), "Ab9"}, apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(issued.Secret.Reveal(), "kg_live_Ab9"), "the body starts with the route")
	assert.True(t, strings.HasPrefix(issued.Key.ID, "Ab9_"), issued.Key.ID)
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err)

	own, err := apikey.New(routed{memstore.New(), "Ab9"}, apikey.Config{NewID: func() string { return "mine" }})
	require.NoError(t, err)
	issued, err = own.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	assert.Equal(t, "mine", issued.Key.ID, "the host's IDs stay its own")

	short, err := apikey.New(routed{memstore.New(), "Ab9"}, apikey.Config{Format: apikey.FormatConfig{Prefix: "kg", BodyLength: 24}})
	require.NoError(t, err)
	issued, err = short.Create(ctx, apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	assert.False(t, strings.HasPrefix(issued.Key.ID, "Ab9_"), "no room for a route beside 22 random characters")

	_, err = svc.Create(ctx, apikey.CreateParams{Owner: "odd"})
	require.Error(t, err, "a route of another length would make a key that never verifies")
	page, err := svc.ListPage(ctx, "odd", "", 10)
	require.NoError(t, err)
	assert.Empty(t, page.Items)

	for _, bad := range []string{"ABCDE", "a_b", "é"} {
		_, err := apikey.New(routed{memstore.New(), bad}, apikey.Config{})
		require.ErrorIs(t, err, apikey.ErrInvalidConfig, bad)
	}
}
