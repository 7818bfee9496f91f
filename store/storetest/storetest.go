// Package storetest is the conformance suite for [apikey.Store] adapters.
// An adapter author runs every behaviour keygate relies on with one call:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apikey.Store {
//			return mystore.New(...) // a fresh, empty store
//		})
//	}
//
// The suite checks the adapter contract directly (CRUD, list isolation,
// duplicates, idempotent revoke, rotation rules, compare-and-set updates,
// purges, delete, expiry queries, the per-owner limit under 100
// concurrent creates, usage counters for stores that implement
// [usage.Store], and the audit trail for stores that implement
// [event.Store]) and through an [apikey.Service] (hash-only
// storage, verification after revoke, rotate and expiry, concurrent
// verification while revoking, update, disable and enable, an update
// racing a rotation, the maximum lifetime, and a whole lifecycle read
// back from the audit trail). Run it with -race.
// It uses only the standard testing package.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
)

// Run runs the suite as subtests of t. newStore must return a fresh, empty
// store each time it is called, and register its own cleanup with t.
func Run(t *testing.T, newStore func(t *testing.T) apikey.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, apikey.Store)
	}{
		{"CreateGetLookup", testCreateGetLookup},
		{"GetOwned", testGetOwned},
		{"Router", testRouter},
		{"RoundTripsEveryField", testRoundTrip},
		{"Duplicates", testDuplicates},
		{"ListIsolatesOwners", testListIsolation},
		{"RevokeIsIdempotent", testRevoke},
		{"Rotate", testRotate},
		{"Delete", testDelete},
		{"Expiring", testExpiring},
		{"MaxActiveCountsOnlyActive", testMaxActiveCountsOnlyActive},
		{"MaxActiveUnderConcurrency", testMaxActiveConcurrent},
		{"ServiceStoresOnlyHashes", testHashOnly},
		{"ServiceVerify", testServiceVerify},
		{"ServiceRotateWithoutGrace", testServiceRotateNoGrace},
		{"ServiceRotateWithGrace", testServiceRotateGrace},
		{"ServiceRotateAtTheLimit", testServiceRotateAtLimit},
		{"ServiceOtherOwner", testServiceOtherOwner},
		{"ServiceConcurrentVerifyWhileRevoking", testConcurrentVerifyRevoke},
		{"Usage", testUsage},
		{"UsageBoundsEndpoints", testUsageBoundsEndpoints},
		{"Update", testUpdate},
		{"Purge", testPurge},
		{"ServiceUpdateDisableEnable", testServiceUpdate},
		{"ServiceUpdateRacesRotation", testServiceUpdateRacesRotation},
		{"ServiceMaxLifetime", testServiceMaxLifetime},
		{"ServiceListPage", testServiceListPage},
		{"Events", testEvents},
		{"EventsKept", testEventsKept},
		{"Outbox", testOutbox},
		{"Facts", testFacts},
		{"DeliveryLog", testDeliveryLog},
		{"Accounts", testAccounts},
		{"AccountCreateRace", testAccountCreateRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			if strings.HasPrefix(tc.name, "Usage") || strings.HasPrefix(tc.name, "Account") || tc.name == "GetOwned" || strings.HasPrefix(tc.name, "Events") || tc.name == "Outbox" || tc.name == "Facts" || tc.name == "DeliveryLog" {
				tc.fn(t, s) // asserts the store's own capabilities
				return
			}
			tc.fn(t, checked{Store: s, t: t})
		})
	}
}

// checked reports a store that answers a lookup with neither a record nor
// an error as a test failure, where it would otherwise panic in the suite
// or in a Service.
type checked struct {
	apikey.Store
	t *testing.T
}

var errNoRecord = errors.New("storetest: the store returned neither a record nor an error")

func (c checked) found(method string, rec *apikey.Record, err error) (*apikey.Record, error) {
	if rec == nil && err == nil {
		c.t.Errorf("%s returned a nil record and a nil error; the contract asks for apikey.ErrNotFound", method)
		return nil, errNoRecord
	}
	return rec, err
}

// Route passes the store's routes through, "" when it does not route.
func (c checked) Route(owner string) string {
	if r, ok := c.Store.(apikey.Router); ok {
		return r.Route(owner)
	}
	return ""
}

func (c checked) Lookup(ctx context.Context, h apikey.Hash, route string) (*apikey.Record, error) {
	rec, err := c.Store.Lookup(ctx, h, route)
	return c.found("Lookup", rec, err)
}

func (c checked) Get(ctx context.Context, id string) (*apikey.Record, error) {
	rec, err := c.Store.Get(ctx, id)
	return c.found("Get", rec, err)
}

// epoch is the suite's fixed "now"; whole seconds in UTC so that any
// encoding an adapter picks can round-trip it.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

var seq atomic.Int64

// record returns a new, valid record for owner with a unique ID and hash.
func record(owner string) *apikey.Record {
	n := seq.Add(1)
	id := fmt.Sprintf("st-%d-%d", time.Now().UnixNano(), n)
	return &apikey.Record{
		Key: apikey.Key{
			ID:            id,
			Owner:         owner,
			Name:          "key " + id,
			DisplayPrefix: "kg_live_" + id[len(id)-6:],
			Permissions:   apikey.Permissions{apikey.Read},
			CreatedAt:     epoch.Add(time.Duration(n) * time.Millisecond),
		},
		Hash: apikey.Hash(sha256.Sum256([]byte(id))),
	}
}

func ctx() context.Context { return context.Background() }

func mustCreate(t *testing.T, s apikey.Store, rec *apikey.Record) {
	t.Helper()
	if err := s.Create(ctx(), rec, 0, epoch, nil); err != nil {
		t.Fatalf("Create(%s): %v", rec.ID, err)
	}
}

func mustGet(t *testing.T, s apikey.Store, id string) *apikey.Record {
	t.Helper()
	rec, err := s.Get(ctx(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return rec
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("%s: got error %v, want %v", what, got, want)
	}
}

func testCreateGetLookup(t *testing.T, s apikey.Store) {
	rec := record("acct_a")
	mustCreate(t, s, rec)
	if got := mustGet(t, s, rec.ID); got.ID != rec.ID || got.Hash != rec.Hash {
		t.Fatalf("Get returned %s/%s, want %s/%s", got.ID, got.Hash, rec.ID, rec.Hash)
	}
	got, err := s.Lookup(ctx(), rec.Hash, "")
	if err != nil || got.ID != rec.ID {
		t.Fatalf("Lookup: %v, %v; want record %s", got, err, rec.ID)
	}
	_, err = s.Get(ctx(), "no-such-id")
	wantErr(t, "Get(unknown)", err, apikey.ErrNotFound)
	_, err = s.Lookup(ctx(), apikey.Hash(sha256.Sum256([]byte("no-such-key"))), "")
	wantErr(t, "Lookup(unknown)", err, apikey.ErrNotFound)
}

func testRoundTrip(t *testing.T, s apikey.Store) {
	rec := record("acct_a")
	rec.Description = "Production backend — ünïcödé, \"quotes\"\nand a newline"
	rec.Permissions = apikey.Permissions{apikey.Delete, apikey.Read, "reports:export"}
	rec.ProjectID = "proj_42"
	rec.Environment = "test"
	rec.Plan = "business"
	rec.Limits = []ratelimit.Window{{Limit: 5, Period: time.Minute}, {Limit: 1000, Monthly: true}}
	rec.NotBefore = epoch.Add(time.Minute)
	rec.ExpiresAt = epoch.Add(48 * time.Hour)
	rec.HashVersion = 3
	rec.Restrictions = apikey.Restrictions{
		AllowedIPs:       []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		AllowedReferrers: []string{"app.example.com", "*.example.org"},
		AllowedEndpoints: []string{"GET /api/v1/recordings", "POST /api/v1/recordings"},
	}
	rec.Metadata = map[string]string{"team": "core", "ticket": "OPS-1"}
	// A copy sharing nothing with rec, which the store now owns.
	want := *rec
	want.Permissions, want.Limits = slices.Clone(rec.Permissions), slices.Clone(rec.Limits)
	want.Restrictions.AllowedIPs = slices.Clone(rec.Restrictions.AllowedIPs)
	want.Restrictions.AllowedReferrers = slices.Clone(rec.Restrictions.AllowedReferrers)
	want.Restrictions.AllowedEndpoints = slices.Clone(rec.Restrictions.AllowedEndpoints)
	want.Metadata = maps.Clone(rec.Metadata)
	mustCreate(t, s, rec)

	for name, get := range map[string]func() (*apikey.Record, error){
		"Get":    func() (*apikey.Record, error) { return s.Get(ctx(), want.ID) },
		"Lookup": func() (*apikey.Record, error) { return s.Lookup(ctx(), want.Hash, "") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := diffRecords(&want, got); diff != "" {
			t.Errorf("%s round trip differs: %s", name, diff)
		}
	}
}

// diffRecords describes the first differences between two records, or "".
func diffRecords(want, got *apikey.Record) string {
	var d []string
	check := func(field string, ok bool, w, g any) {
		if !ok {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w))
		}
	}
	check("ID", want.ID == got.ID, want.ID, got.ID)
	check("Owner", want.Owner == got.Owner, want.Owner, got.Owner)
	check("Name", want.Name == got.Name, want.Name, got.Name)
	check("Description", want.Description == got.Description, want.Description, got.Description)
	check("DisplayPrefix", want.DisplayPrefix == got.DisplayPrefix, want.DisplayPrefix, got.DisplayPrefix)
	check("Permissions", fmt.Sprint(want.Permissions) == fmt.Sprint(got.Permissions), want.Permissions, got.Permissions)
	check("ProjectID", want.ProjectID == got.ProjectID, want.ProjectID, got.ProjectID)
	check("Environment", want.Environment == got.Environment, want.Environment, got.Environment)
	check("Plan", want.Plan == got.Plan, want.Plan, got.Plan)
	check("Limits", fmt.Sprint(want.Limits) == fmt.Sprint(got.Limits), want.Limits, got.Limits)
	check("CreatedAt", want.CreatedAt.Equal(got.CreatedAt), want.CreatedAt, got.CreatedAt)
	check("NotBefore", want.NotBefore.Equal(got.NotBefore), want.NotBefore, got.NotBefore)
	check("ExpiresAt", want.ExpiresAt.Equal(got.ExpiresAt), want.ExpiresAt, got.ExpiresAt)
	check("RevokedAt", want.RevokedAt.Equal(got.RevokedAt), want.RevokedAt, got.RevokedAt)
	check("ReplacedBy", want.ReplacedBy == got.ReplacedBy, want.ReplacedBy, got.ReplacedBy)
	check("Restrictions", fmt.Sprint(want.Restrictions) == fmt.Sprint(got.Restrictions), want.Restrictions, got.Restrictions)
	check("Metadata", fmt.Sprint(want.Metadata) == fmt.Sprint(got.Metadata), want.Metadata, got.Metadata)
	check("Hash", want.Hash == got.Hash, want.Hash, got.Hash)
	check("HashVersion", want.HashVersion == got.HashVersion, want.HashVersion, got.HashVersion)
	return strings.Join(d, "; ")
}

func testDuplicates(t *testing.T, s apikey.Store) {
	rec := record("acct_a")
	mustCreate(t, s, rec)

	sameID := record("acct_a")
	sameID.ID = rec.ID
	wantErr(t, "Create(same ID)", s.Create(ctx(), sameID, 0, epoch, nil), apikey.ErrDuplicate)
	_, err := s.Lookup(ctx(), sameID.Hash, "")
	wantErr(t, "Lookup(hash of rejected duplicate)", err, apikey.ErrNotFound)

	sameHash := record("acct_b")
	sameHash.Hash = rec.Hash
	wantErr(t, "Create(same hash)", s.Create(ctx(), sameHash, 0, epoch, nil), apikey.ErrDuplicate)
	_, err = s.Get(ctx(), sameHash.ID)
	wantErr(t, "Get(ID of rejected duplicate)", err, apikey.ErrNotFound)
	if got := mustGet(t, s, rec.ID); got.Owner != "acct_a" {
		t.Fatalf("original record changed owner to %q", got.Owner)
	}
}

func testListIsolation(t *testing.T, s apikey.Store) {
	// Twelve keys created out of order, with ties on CreatedAt broken by
	// ID, so that neither insertion order nor any order but the contract's
	// passes (a store returning them at random would pass once in 12!).
	var want []string
	base := record("acct_a")
	for _, slot := range []int{7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4} {
		rec := record("acct_a")
		rec.ID = fmt.Sprintf("%s-%02d", base.ID, 11-slot) // ID order reverses slot order...
		rec.Hash = apikey.Hash(sha256.Sum256([]byte(rec.ID)))
		rec.CreatedAt = epoch.Add(time.Duration(slot/2) * time.Second) // ...within a pair of equal times
		mustCreate(t, s, rec)
	}
	for slot := range 12 {
		pair := slot / 2 * 2
		// Within a pair (slots 2k and 2k+1, equal CreatedAt), the lower ID
		// comes first: that is slot 2k+1's.
		want = append(want, fmt.Sprintf("%s-%02d", base.ID, 11-(pair+1-slot%2)))
	}
	b := record("acct_b")
	mustCreate(t, s, b)

	got, err := s.List(ctx(), "acct_a")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, rec := range got {
		if rec == nil {
			t.Fatalf("List returned a nil record")
		}
		ids = append(ids, rec.ID)
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("List(acct_a) = %v, want %v: ordered by CreatedAt, then ID", ids, want)
	}
	got, err = s.List(ctx(), "acct_b")
	if err != nil || len(got) != 1 || got[0] == nil || got[0].ID != b.ID {
		t.Fatalf("List(acct_b) = %v, %v; want only %s", got, err, b.ID)
	}
	got, err = s.List(ctx(), "acct_nobody")
	if err != nil || len(got) != 0 {
		t.Fatalf("List(unknown owner) = %v, %v; want empty, nil", got, err)
	}
}

func testRevoke(t *testing.T, s apikey.Store) {
	rec := record("acct_a")
	mustCreate(t, s, rec)
	first := epoch.Add(time.Hour)
	if err := s.Revoke(ctx(), rec.ID, first, nil); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := s.Revoke(ctx(), rec.ID, first.Add(time.Hour), nil); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	got, err := s.Lookup(ctx(), rec.Hash, "")
	if err != nil {
		t.Fatalf("Lookup(revoked) must still find the record: %v", err)
	}
	if !got.RevokedAt.Equal(first) {
		t.Fatalf("RevokedAt = %v, want the first revocation %v", got.RevokedAt, first)
	}
	wantErr(t, "Revoke(unknown)", s.Revoke(ctx(), "no-such-id", first, nil), apikey.ErrNotFound)
}

func testRotate(t *testing.T, s apikey.Store) {
	old := record("acct_a")
	mustCreate(t, s, old)
	repl := record("acct_a")
	retire := epoch.Add(time.Hour)
	if err := s.Rotate(ctx(), old, retire, repl, 0, epoch, nil); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	got := mustGet(t, s, old.ID)
	if got.ReplacedBy != repl.ID || !got.ExpiresAt.Equal(retire) {
		t.Fatalf("retired record: ReplacedBy=%q ExpiresAt=%v, want %q %v", got.ReplacedBy, got.ExpiresAt, repl.ID, retire)
	}
	if _, err := s.Lookup(ctx(), repl.Hash, ""); err != nil {
		t.Fatalf("Lookup(replacement): %v", err)
	}
	again := record("acct_a")
	wantErr(t, "Rotate(already rotated)", s.Rotate(ctx(), old, retire, again, 0, epoch, nil), apikey.ErrRotated)
	_, err := s.Get(ctx(), again.ID)
	wantErr(t, "Get(replacement of failed rotation)", err, apikey.ErrNotFound)

	// An earlier expiry is kept.
	soon := record("acct_a")
	soon.ExpiresAt = epoch.Add(time.Minute)
	mustCreate(t, s, soon)
	if err := s.Rotate(ctx(), soon, epoch.Add(time.Hour), record("acct_a"), 0, epoch, nil); err != nil {
		t.Fatalf("Rotate(soon): %v", err)
	}
	if got := mustGet(t, s, soon.ID); !got.ExpiresAt.Equal(soon.ExpiresAt) {
		t.Fatalf("Rotate moved an earlier expiry from %v to %v", soon.ExpiresAt, got.ExpiresAt)
	}

	revoked := record("acct_a")
	mustCreate(t, s, revoked)
	if err := s.Revoke(ctx(), revoked.ID, epoch, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Rotate(revoked)", s.Rotate(ctx(), revoked, retire, record("acct_a"), 0, epoch, nil), apikey.ErrRevoked)
	wantErr(t, "Rotate(unknown)", s.Rotate(ctx(), record("acct_a"), retire, record("acct_a"), 0, epoch, nil), apikey.ErrNotFound)

	dup := record("acct_a")
	dup.Hash = repl.Hash
	fresh := record("acct_a")
	mustCreate(t, s, fresh)
	wantErr(t, "Rotate(duplicate replacement)", s.Rotate(ctx(), fresh, retire, dup, 0, epoch, nil), apikey.ErrDuplicate)
	if got := mustGet(t, s, fresh.ID); got.ReplacedBy != "" || !got.ExpiresAt.IsZero() {
		t.Fatalf("failed Rotate changed the old record: %+v", got.Key)
	}
}

func testDelete(t *testing.T, s apikey.Store) {
	rec := record("acct_a")
	keep := record("acct_a")
	mustCreate(t, s, rec)
	mustCreate(t, s, keep)
	if err := s.Delete(ctx(), rec.ID, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx(), rec.ID)
	wantErr(t, "Get(deleted)", err, apikey.ErrNotFound)
	_, err = s.Lookup(ctx(), rec.Hash, "")
	wantErr(t, "Lookup(deleted)", err, apikey.ErrNotFound)
	wantErr(t, "Delete(deleted)", s.Delete(ctx(), rec.ID, nil), apikey.ErrNotFound)
	list, err := s.List(ctx(), "acct_a")
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("List after Delete = %v, %v; want only %s", list, err, keep.ID)
	}
}

func testExpiring(t *testing.T, s apikey.Store) {
	at := func(owner string, d time.Duration) *apikey.Record {
		rec := record(owner)
		rec.ExpiresAt = epoch.Add(d)
		mustCreate(t, s, rec)
		return rec
	}
	late := at("acct_a", 3*time.Hour)
	early := at("acct_b", time.Hour)
	at("acct_a", 30*time.Hour) // outside the window
	at("acct_a", -time.Hour)   // already expired
	revoked := at("acct_a", 2*time.Hour)
	if err := s.Revoke(ctx(), revoked.ID, epoch, nil); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, record("acct_a")) // never expires

	got, err := s.Expiring(ctx(), epoch, epoch.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("Expiring: %v", err)
	}
	var ids []string
	for _, rec := range got {
		ids = append(ids, rec.ID)
	}
	if want := []string{early.ID, late.ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("Expiring = %v, want %v", ids, want)
	}
}

func testMaxActiveCountsOnlyActive(t *testing.T, s apikey.Store) {
	const max = 3
	revoked, expired := record("acct_a"), record("acct_a")
	expired.ExpiresAt = epoch.Add(-time.Second)
	mustCreate(t, s, revoked)
	mustCreate(t, s, expired)
	if err := s.Revoke(ctx(), revoked.ID, epoch, nil); err != nil {
		t.Fatal(err)
	}
	pending := record("acct_a")
	pending.NotBefore = epoch.Add(time.Hour)
	if err := s.Create(ctx(), pending, max, epoch, nil); err != nil {
		t.Fatalf("Create(pending): %v", err)
	}
	for i := range max - 1 {
		if err := s.Create(ctx(), record("acct_a"), max, epoch, nil); err != nil {
			t.Fatalf("Create #%d under the limit: %v", i+2, err)
		}
	}
	over := record("acct_a")
	wantErr(t, "Create over the limit", s.Create(ctx(), over, max, epoch, nil), apikey.ErrTooManyKeys)
	_, err := s.Get(ctx(), over.ID)
	wantErr(t, "Get(rejected)", err, apikey.ErrNotFound)
	if err := s.Create(ctx(), record("acct_b"), max, epoch, nil); err != nil {
		t.Fatalf("another owner is not limited by acct_a's keys: %v", err)
	}
}

func testMaxActiveConcurrent(t *testing.T, s apikey.Store) {
	const goroutines, max = 100, 10
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.Create(ctx(), record("acct_race"), max, epoch, nil)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, apikey.ErrTooManyKeys):
				limited.Add(1)
			default:
				t.Errorf("Create: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != max || limited.Load() != goroutines-max {
		t.Fatalf("%d concurrent creates: %d succeeded and %d hit the limit, want %d and %d",
			goroutines, ok.Load(), limited.Load(), max, goroutines-max)
	}
	list, err := s.List(ctx(), "acct_race")
	if err != nil || len(list) != max {
		t.Fatalf("List = %d records, %v; want %d", len(list), err, max)
	}
}

// testGetOwned runs only for stores with [apikey.OwnedGetter]: another
// owner's ID is not found, as an unknown one.
func testGetOwned(t *testing.T, s apikey.Store) {
	og, ok := s.(apikey.OwnedGetter)
	if !ok {
		t.Skip("the store does not implement apikey.OwnedGetter")
	}
	rec := record("acct_a")
	mustCreate(t, s, rec)
	got, err := og.GetOwned(ctx(), "acct_a", rec.ID)
	if err != nil || got == nil || got.ID != rec.ID {
		t.Fatalf("GetOwned(owner) = %v, %v; want record %s", got, err, rec.ID)
	}
	_, err = og.GetOwned(ctx(), "acct_b", rec.ID)
	wantErr(t, "GetOwned(another owner)", err, apikey.ErrNotFound)
	_, err = og.GetOwned(ctx(), "acct_a", "no-such-id")
	wantErr(t, "GetOwned(unknown)", err, apikey.ErrNotFound)
}
