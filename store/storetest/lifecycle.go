package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/internal/testclock"
)

// testUpdate checks the store's compare-and-set.
func testUpdate(t *testing.T, s apikey.Store) {
	rec := record("acct_a")
	mustCreate(t, s, rec)
	prev := mustGet(t, s, rec.ID)
	next := *prev
	next.Name = "renamed"
	next.ExpiresAt = epoch.Add(time.Hour)
	if err := s.Update(ctx(), prev, &next, nil); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := s.Lookup(ctx(), rec.Hash, "")
	if err != nil || got.Name != "renamed" || !got.ExpiresAt.Equal(next.ExpiresAt) {
		t.Fatalf("Lookup after Update: %+v, %v; want the new name and expiry", got, err)
	}
	expiring, err := s.Expiring(ctx(), epoch, epoch.Add(2*time.Hour))
	if err != nil || len(expiring) != 1 || expiring[0].ID != rec.ID {
		t.Fatalf("Expiring after an update set the expiry: %d records, %v; want the updated one", len(expiring), err)
	}

	stale := next
	stale.Name = "lost update"
	wantErr(t, "Update(stale prev)", s.Update(ctx(), prev, &stale, nil), apikey.ErrConflict)
	if got := mustGet(t, s, rec.ID); got.Name != "renamed" {
		t.Fatalf("a refused Update changed the record: name %q", got.Name)
	}
	unknown := record("acct_a")
	wantErr(t, "Update(unknown)", s.Update(ctx(), unknown, unknown, nil), apikey.ErrNotFound)

	// Of concurrent updates from one read, exactly one wins.
	base := mustGet(t, s, rec.ID)
	var wins, conflicts int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			n := *base
			n.Description = strings.Repeat("x", i+1)
			err := s.Update(ctx(), base, &n, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, apikey.ErrConflict):
				conflicts++
			default:
				t.Errorf("concurrent Update: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Fatalf("8 concurrent updates from one read: %d won, %d conflicts; want 1 and 7", wins, conflicts)
	}
}

// testPurge checks which records a purge deletes, its limit and
// concurrent purges.
func testPurge(t *testing.T, s apikey.Store) {
	cutoff := epoch.Add(time.Hour)
	var old []*apikey.Record
	revoked := record("acct_a")
	mustCreate(t, s, revoked)
	if err := s.Revoke(ctx(), revoked.ID, epoch, nil); err != nil {
		t.Fatal(err)
	}
	expired := record("acct_a")
	expired.ExpiresAt = epoch.Add(time.Minute)
	mustCreate(t, s, expired)
	rotated := record("acct_b")
	mustCreate(t, s, rotated)
	if err := s.Rotate(ctx(), rotated, epoch.Add(time.Minute), record("acct_b"), 0, epoch, nil); err != nil {
		t.Fatal(err)
	}
	old = append(old, revoked, expired, rotated)

	var kept []*apikey.Record
	active := record("acct_a")
	mustCreate(t, s, active)
	later := record("acct_a")
	later.ExpiresAt = cutoff.Add(time.Minute)
	mustCreate(t, s, later)
	recent := record("acct_a")
	mustCreate(t, s, recent)
	if err := s.Revoke(ctx(), recent.ID, cutoff.Add(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, active, later, recent)

	// The first with no event, as every change may be made.
	n, err := s.Purge(ctx(), cutoff, 1, nil)
	if err != nil || n != 1 {
		t.Fatalf("Purge(limit 1, no event) = %d, %v; want 1", n, err)
	}
	ev := &event.Event{Type: event.KeyPurged, At: cutoff}
	// The rest, by concurrent purges: each record deleted once.
	var total int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			n, err := s.Purge(ctx(), cutoff, 100, ev)
			if err != nil {
				t.Errorf("concurrent Purge: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != len(old)-1 {
		t.Fatalf("concurrent purges deleted %d records, want %d", total, len(old)-1)
	}
	for _, rec := range old {
		_, err := s.Lookup(ctx(), rec.Hash, "")
		wantErr(t, "Lookup(purged "+rec.ID+")", err, apikey.ErrNotFound)
		_, err = s.Get(ctx(), rec.ID)
		wantErr(t, "Get(purged "+rec.ID+")", err, apikey.ErrNotFound)
	}
	for _, rec := range kept {
		if _, err := s.Lookup(ctx(), rec.Hash, ""); err != nil {
			t.Fatalf("Purge deleted %s, which ended after the cutoff or never: %v", rec.ID, err)
		}
	}
	if n, err := s.Purge(ctx(), cutoff, 100, ev); err != nil || n != 0 {
		t.Fatalf("Purge with nothing left = %d, %v; want 0", n, err)
	}
}

// testServiceUpdate checks update, disable and enable through a Service,
// and their refusals.
func testServiceUpdate(t *testing.T, s apikey.Store) {
	svc, clock := newService(t, s)
	issued := mustIssue(t, svc, apikey.CreateParams{Name: "ci", Permissions: []apikey.Permission{apikey.Read}})
	id, key := issued.Key.ID, issued.Secret.Reveal()

	exp := epoch.Add(48 * time.Hour)
	got, err := svc.Update(ctx(), "acct_a", id, func(p *apikey.UpdateParams) {
		p.Name = "deploy"
		p.Permissions = append(p.Permissions, apikey.Write)
		p.ExpiresAt = exp
		p.Metadata = map[string]string{"team": "infra"}
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got.Name != "deploy" || !got.Permissions.Has(apikey.Write) || !got.ExpiresAt.Equal(exp) || got.Metadata["team"] != "infra" {
		t.Fatalf("Update returned %+v", got)
	}
	p := wantVerify(t, svc, key, nil)
	if !p.Has(apikey.Write) || p.Key().Name != "deploy" {
		t.Fatalf("the key verifies with its old fields after Update: %+v", p.Key())
	}

	for _, tc := range []struct {
		name   string
		change func(*apikey.UpdateParams)
	}{
		{"unknown permission", func(p *apikey.UpdateParams) { p.Permissions = []apikey.Permission{"launch"} }},
		{"expiry in the past", func(p *apikey.UpdateParams) { p.ExpiresAt = epoch.Add(-time.Hour) }},
		{"name too long", func(p *apikey.UpdateParams) { p.Name = strings.Repeat("n", 201) }},
		{"unknown plan", func(p *apikey.UpdateParams) { p.Plan = "gold" }},
	} {
		_, err := svc.Update(ctx(), "acct_a", id, tc.change)
		wantErr(t, "Update("+tc.name+")", err, apikey.ErrInvalidInput)
	}
	if k, err := svc.Get(ctx(), "acct_a", id); err != nil || k.Name != "deploy" || len(k.Permissions) != 2 {
		t.Fatalf("a refused update changed the key: %+v, %v", k, err)
	}
	_, err = svc.Update(ctx(), "acct_b", id, func(p *apikey.UpdateParams) { p.Name = "x" })
	wantErr(t, "Update(another owner's key)", err, apikey.ErrNotFound)

	// Disable and enable.
	k, err := svc.Disable(ctx(), "acct_a", id)
	if err != nil || k.Status(clock.Now()) != apikey.StatusDisabled {
		t.Fatalf("Disable: %v, status %s", err, k.Status(clock.Now()))
	}
	_, err = svc.Verify(ctx(), key)
	if !errors.Is(err, apikey.ErrInvalidKey) || !errors.Is(err, apikey.ErrDisabled) {
		t.Fatalf("Verify(disabled) = %v; want an error matching ErrInvalidKey and ErrDisabled", err)
	}
	if _, err := svc.Disable(ctx(), "acct_a", id); err != nil {
		t.Fatalf("Disable(disabled): %v", err)
	}
	_, err = svc.Rotate(ctx(), "acct_a", id, 0)
	wantErr(t, "Rotate(disabled)", err, apikey.ErrDisabled)
	if _, err := svc.Update(ctx(), "acct_a", id, func(p *apikey.UpdateParams) { p.Description = "paused" }); err != nil {
		t.Fatalf("Update(disabled): %v", err)
	}
	if k, err := svc.Enable(ctx(), "acct_a", id); err != nil || k.Status(clock.Now()) != apikey.StatusActive {
		t.Fatalf("Enable: %v", err)
	}
	wantVerify(t, svc, key, nil)

	// Revoked and expired keys do not change.
	if err := svc.Revoke(ctx(), "acct_a", id); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Update(ctx(), "acct_a", id, func(p *apikey.UpdateParams) { p.Name = "x" })
	wantErr(t, "Update(revoked)", err, apikey.ErrRevoked)
	_, err = svc.Enable(ctx(), "acct_a", id)
	wantErr(t, "Enable(revoked)", err, apikey.ErrRevoked)
	short := mustIssue(t, svc, apikey.CreateParams{ExpiresAt: epoch.Add(time.Minute)})
	clock.Advance(time.Hour)
	_, err = svc.Update(ctx(), "acct_a", short.Key.ID, func(p *apikey.UpdateParams) { p.ExpiresAt = epoch.Add(48 * time.Hour) })
	wantErr(t, "Update(expired)", err, apikey.ErrExpired)
}

// testServiceUpdateRacesRotation checks that of an update and a rotation
// of one key, run at once, the replacement never misses the update: either
// the update lands first and the rotation copies it (or fails with
// ErrConflict), or the rotation lands first and the update fails.
func testServiceUpdateRacesRotation(t *testing.T, s apikey.Store) {
	svc, _ := newService(t, s)
	for range 10 {
		issued := mustIssue(t, svc, apikey.CreateParams{Name: "before"})
		id := issued.Key.ID
		var upErr, rotErr error
		var repl apikey.Issued
		var wg sync.WaitGroup
		wg.Go(func() {
			_, upErr = svc.Update(ctx(), "acct_a", id, func(p *apikey.UpdateParams) { p.Name = "after" })
		})
		wg.Go(func() { repl, rotErr = svc.Rotate(ctx(), "acct_a", id, 0) })
		wg.Wait()
		switch {
		case upErr == nil && rotErr == nil:
			if repl.Key.Name != "after" {
				t.Fatalf("the rotation landed after the update but its replacement is named %q", repl.Key.Name)
			}
		case upErr == nil:
			wantErr(t, "Rotate(racing an update)", rotErr, apikey.ErrConflict)
		case rotErr == nil:
			if !errors.Is(upErr, apikey.ErrConflict) && !errors.Is(upErr, apikey.ErrRotated) && !errors.Is(upErr, apikey.ErrExpired) {
				t.Fatalf("Update racing a rotation: %v; want ErrConflict, ErrRotated or ErrExpired", upErr)
			}
		default:
			t.Fatalf("both failed: update %v, rotate %v", upErr, rotErr)
		}
		if repl.Key.ID != "" {
			_ = svc.Delete(ctx(), "acct_a", repl.Key.ID)
		}
		_ = svc.Delete(ctx(), "acct_a", id)
	}
}

// testServiceMaxLifetime checks Config.MaxLifetime.
func testServiceMaxLifetime(t *testing.T, s apikey.Store) {
	clock := testclock.New(epoch)
	const life = 90 * 24 * time.Hour
	svc, err := apikey.New(s, apikey.Config{Clock: clock.Now, MaxLifetime: life})
	if err != nil {
		t.Fatal(err)
	}
	issued := mustIssue(t, svc, apikey.CreateParams{})
	if !issued.Key.ExpiresAt.Equal(epoch.Add(life)) {
		t.Fatalf("a key created without expiry expires at %v, want %v", issued.Key.ExpiresAt, epoch.Add(life))
	}
	_, err = svc.Create(ctx(), apikey.CreateParams{Owner: "acct_a", ExpiresAt: epoch.Add(life + time.Second)})
	wantErr(t, "Create(past the lifetime)", err, apikey.ErrInvalidInput)
	_, err = svc.Update(ctx(), "acct_a", issued.Key.ID, func(p *apikey.UpdateParams) { p.ExpiresAt = epoch.Add(life + time.Hour) })
	wantErr(t, "Update(past the lifetime)", err, apikey.ErrInvalidInput)
	_, err = svc.Update(ctx(), "acct_a", issued.Key.ID, func(p *apikey.UpdateParams) { p.ExpiresAt = time.Time{} })
	wantErr(t, "Update(no expiry)", err, apikey.ErrInvalidInput)
	if _, err := svc.Update(ctx(), "acct_a", issued.Key.ID, func(p *apikey.UpdateParams) { p.ExpiresAt = epoch.Add(time.Hour) }); err != nil {
		t.Fatalf("Update(shorten): %v", err)
	}
	clock.Advance(30 * time.Minute)
	repl, err := svc.Rotate(ctx(), "acct_a", issued.Key.ID, 0)
	if err != nil || !repl.Key.ExpiresAt.Equal(clock.Now().Add(life)) {
		t.Fatalf("Rotate under a lifetime: %v, expires %v; want a fresh lifetime %v", err, repl.Key.ExpiresAt, clock.Now().Add(life))
	}
}

// testEvents runs a key's whole lifecycle and reads it back from the
// audit trail: every kind of event, in order, with actor, IP and changes,
// pages and filters, and never the key's text or hash.
func testEvents(t *testing.T, s apikey.Store) {
	if _, ok := s.(event.Store); !ok {
		t.Skip("the store keeps no audit trail (event.Store)")
	}
	svc, clock := newService(t, s)
	c := apikey.WithActor(ctx(), apikey.Actor{ID: "alice@example.com", IP: "203.0.113.7"})
	const owner = "acct_events"
	var secrets []string
	first, err := svc.Create(c, apikey.CreateParams{Owner: owner, Name: "ci", ExpiresAt: epoch.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id := first.Key.ID
	secrets = append(secrets, first.Secret.Reveal(), hashHex(first.Secret))
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err = svc.Update(c, owner, id, func(p *apikey.UpdateParams) { p.Name = "deploy" })
	must("Update", err)
	_, err = svc.Update(c, owner, id, func(p *apikey.UpdateParams) { p.Name = "deploy" })
	must("Update (no change)", err)
	_, err = svc.Update(c, owner, id, func(p *apikey.UpdateParams) { p.Permissions = []apikey.Permission{"nope"} })
	wantErr(t, "Update(bad input)", err, apikey.ErrInvalidInput)
	_, err = svc.Disable(c, owner, id)
	must("Disable", err)
	_, err = svc.Disable(c, owner, id)
	must("Disable (again)", err)
	_, err = svc.Enable(c, owner, id)
	must("Enable", err)
	repl, err := svc.Rotate(c, owner, id, 0)
	must("Rotate", err)
	secrets = append(secrets, repl.Secret.Reveal(), hashHex(repl.Secret))
	must("Revoke", svc.Revoke(c, owner, repl.Key.ID))
	must("Revoke (again)", svc.Revoke(c, owner, repl.Key.ID))
	_, err = svc.Update(c, owner, repl.Key.ID, func(p *apikey.UpdateParams) { p.Name = "zombie" })
	wantErr(t, "Update(revoked)", err, apikey.ErrRevoked)
	other, err := svc.Create(c, apikey.CreateParams{Owner: owner, Name: "scratch"})
	must("Create", err)
	secrets = append(secrets, other.Secret.Reveal(), hashHex(other.Secret))
	must("Delete", svc.Delete(c, owner, other.Key.ID))
	_, err = svc.Update(c, owner, other.Key.ID, func(p *apikey.UpdateParams) { p.Name = "ghost" })
	wantErr(t, "Update(deleted)", err, apikey.ErrNotFound)
	_, err = svc.Disable(c, owner, other.Key.ID)
	wantErr(t, "Disable(deleted)", err, apikey.ErrNotFound)
	clock.Advance(48 * time.Hour)
	n, err := svc.Purge(c, time.Hour)
	must("Purge", err)
	if n < 2 {
		t.Fatalf("Purge deleted %d records, want the rotated and the revoked key at least", n)
	}

	var all []event.Event
	cursor := ""
	for range 20 {
		page, err := svc.Events(ctx(), owner, "", cursor, 3)
		must("Events", err)
		all = append(all, page.Items...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	var types []event.Type
	for _, e := range all {
		types = append(types, e.Type)
	}
	want := []event.Type{
		event.KeyPurged, event.KeyPurged, event.KeyDeleted, event.KeyCreated, event.KeyRevoked,
		event.KeyRotated, event.KeyEnabled, event.KeyDisabled, event.KeyUpdated, event.KeyCreated,
	}
	if !slices.Equal(types, want) {
		t.Fatalf("the account's events, newest first, paged by 3:\n got %v\nwant %v", types, want)
	}
	ids := map[string]bool{}
	for _, e := range all {
		if ids[e.ID] || e.ID == "" {
			t.Fatalf("event IDs are not unique: %q", e.ID)
		}
		ids[e.ID] = true
		if e.Account != owner || e.Actor != "alice@example.com" || e.IP != "203.0.113.7" || e.At.IsZero() {
			t.Fatalf("event %s: account %q, actor %q, ip %q, at %v", e.Type, e.Account, e.Actor, e.IP, e.At)
		}
		data, err := json.Marshal(e)
		must("encode event", err)
		for _, secret := range secrets {
			if strings.Contains(string(data), secret) || strings.Contains(string(data), secret[len(secret)-20:]) {
				t.Fatalf("event %s holds a key's text or hash: %s", e.Type, data)
			}
		}
	}
	updated := all[8]
	if ch := updated.Changes["name"]; string(ch.Old) != `"ci"` || string(ch.New) != `"deploy"` || len(updated.Changes) != 1 {
		t.Fatalf("the update's changes: %+v; want name from ci to deploy only", updated.Changes)
	}
	if ch := all[5].Changes["replaced_by"]; string(ch.New) != `"`+repl.Key.ID+`"` || all[5].KeyID != id {
		t.Fatalf("the rotation event: key %s, changes %+v; want the old key replaced by %s", all[5].KeyID, all[5].Changes, repl.Key.ID)
	}

	// One key's events.
	page, err := svc.Events(ctx(), owner, id, "", 100)
	must("Events(key)", err)
	var keyTypes []event.Type
	for _, e := range page.Items {
		if e.KeyID != id {
			t.Fatalf("Events(key %s) returned an event of %s", id, e.KeyID)
		}
		keyTypes = append(keyTypes, e.Type)
	}
	wantKey := []event.Type{event.KeyPurged, event.KeyRotated, event.KeyEnabled, event.KeyDisabled, event.KeyUpdated, event.KeyCreated}
	if !slices.Equal(keyTypes, wantKey) || page.Next != "" {
		t.Fatalf("one key's events:\n got %v (next %q)\nwant %v", keyTypes, page.Next, wantKey)
	}
	page, err = svc.Events(ctx(), owner, id, "", 2)
	must("Events(key, 2)", err)
	if len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("a page of 2 of 6 events: %d items, next %q", len(page.Items), page.Next)
	}
	page, err = svc.Events(ctx(), owner, id, page.Next, 100)
	must("Events(key, next page)", err)
	if len(page.Items) != 4 || page.Items[0].Type != event.KeyEnabled {
		t.Fatalf("the second page: %d items, want 4 from key.enabled", len(page.Items))
	}

	// Another account sees none of them; a bad cursor is bad input.
	page, err = svc.Events(ctx(), "acct_other", "", "", 100)
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("another account's events: %d, %v", len(page.Items), err)
	}
	// Cursors of every store's shape, but out of its range.
	for _, bad := range []string{"not-a-cursor", "../../x", "1;DROP TABLE", "0-0", "-1", "99999999999999999999-0", "99999999999999999999"} {
		_, err = svc.Events(ctx(), owner, "", bad, 10)
		wantErr(t, "Events(cursor "+bad+")", err, apikey.ErrInvalidInput)
	}
}

// hashHex is how a store would most likely write secret's hash.
func hashHex(secret apikey.Secret) string {
	h := apikey.Hash(sha256.Sum256([]byte(secret.Reveal())))
	return hex.EncodeToString(h[:])
}

// testServiceListPage pages through an owner's keys.
func testServiceListPage(t *testing.T, s apikey.Store) {
	svc, clock := newService(t, s)
	var want []string
	for range 7 {
		want = append(want, mustIssue(t, svc, apikey.CreateParams{Owner: "acct_pages"}).Key.ID)
		clock.Advance(time.Millisecond)
	}
	mustIssue(t, svc, apikey.CreateParams{Owner: "acct_other"})
	var got []string
	cursor := ""
	for range 10 {
		page, err := svc.ListPage(ctx(), "acct_pages", cursor, 3)
		if err != nil {
			t.Fatalf("ListPage: %v", err)
		}
		for _, k := range page.Items {
			got = append(got, k.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages of 3: %v, want every key once, oldest first: %v", got, want)
	}
	for _, bad := range []string{"x", "MTIz", "Li4v", "%%%"} {
		_, err := svc.ListPage(ctx(), "acct_pages", bad, 3)
		wantErr(t, "ListPage(cursor "+bad+")", err, apikey.ErrInvalidInput)
	}
	_, err := svc.ListPage(ctx(), "acct_pages", "", -1)
	wantErr(t, "ListPage(limit -1)", err, apikey.ErrInvalidInput)
	// An account ID no key can have is bad input on every store, before
	// a store's own encoding rules can answer otherwise.
	for _, bad := range []string{"acct_\xff\xfe", "acct_\x00"} {
		_, err = svc.ListPage(ctx(), bad, "", 3)
		wantErr(t, "ListPage(account "+strconv.Quote(bad)+")", err, apikey.ErrInvalidInput)
		_, err = svc.Events(ctx(), bad, "", "", 3)
		if !errors.Is(err, errors.ErrUnsupported) {
			wantErr(t, "Events(account "+strconv.Quote(bad)+")", err, apikey.ErrInvalidInput)
		}
		_, err = svc.Get(ctx(), bad, "some-id")
		wantErr(t, "Get(account "+strconv.Quote(bad)+")", err, apikey.ErrInvalidInput)
		_, err = svc.Account(ctx(), bad)
		wantErr(t, "Account("+strconv.Quote(bad)+")", err, apikey.ErrInvalidInput)
	}
}

// testEventsKept: the audit trail is kept by age, with a bound per key,
// so that one key's churn never erases another key's history.
func testEventsKept(t *testing.T, s apikey.Store) {
	if _, ok := s.(event.Store); !ok {
		t.Skip("the store keeps no audit trail (event.Store)")
	}
	svc, clock := newService(t, s)
	const owner = "acct_trail"
	quiet := mustIssue(t, svc, apikey.CreateParams{Owner: owner})
	busy := mustIssue(t, svc, apikey.CreateParams{Owner: owner})
	for i := range event.PerKey + 5 {
		clock.Advance(time.Second)
		if _, err := svc.Update(ctx(), owner, busy.Key.ID, func(p *apikey.UpdateParams) { p.Name = strconv.Itoa(i) }); err != nil {
			t.Fatalf("Update %d: %v", i, err)
		}
	}
	count := func(keyID string) (n int, oldest event.Event) {
		t.Helper()
		cursor := ""
		for {
			page, err := svc.Events(ctx(), owner, keyID, cursor, 100)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			n += len(page.Items)
			if len(page.Items) > 0 {
				oldest = page.Items[len(page.Items)-1]
			}
			if cursor = page.Next; cursor == "" {
				return n, oldest
			}
		}
	}
	if n, oldest := count(quiet.Key.ID); n != 1 || oldest.Type != event.KeyCreated {
		t.Fatalf("the quiet key has %d events (oldest %s) after another key's churn; want its creation, kept", n, oldest.Type)
	}
	if n, oldest := count(busy.Key.ID); n != event.PerKey || oldest.Type != event.KeyUpdated {
		t.Fatalf("the busy key has %d events (oldest %s); want its latest %d, its oldest dropped", n, oldest.Type, event.PerKey)
	}
	// Past the retention, the next change of the account drops them all.
	clock.Advance(event.Retention + time.Hour)
	if _, err := svc.Disable(ctx(), owner, quiet.Key.ID); err != nil {
		t.Fatalf("Disable: %v", err)
	}
	if n, _ := count(""); n != 1 {
		t.Fatalf("the account has %d events after the retention; want only the newest", n)
	}
}
