package storetest

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// testOutbox checks a store's outbox: every change's event is there once,
// with its audit trail's ID; a key's events are leased one at a time, in
// order; a lease excludes others until it ends; a settled delivery is
// gone, a retried one due again later; two instances leasing at once
// never both get one event.
func testOutbox(t *testing.T, s apikey.Store) {
	box, ok := s.(event.Outbox)
	if !ok {
		t.Skip("the store keeps no outbox (event.Outbox)")
	}
	svc, clock := newService(t, s)
	const owner = "acct_outbox"
	var keys []string
	for range 3 {
		issued, err := svc.Create(ctx(), apikey.CreateParams{Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, issued.Key.ID)
	}
	if _, err := svc.Disable(ctx(), owner, keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(ctx(), owner, keys[0]); err != nil {
		t.Fatal(err)
	}
	trail, err := svc.Events(ctx(), owner, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	lease := func(n int) []event.Delivery {
		t.Helper()
		ds, err := box.Lease(ctx(), now, n, time.Minute)
		if err != nil {
			t.Fatalf("Lease: %v", err)
		}
		return ds
	}
	settle := func(d *event.Delivery, done bool, retry time.Time) {
		t.Helper()
		if err := box.Settle(ctx(), d, done, retry); err != nil {
			t.Fatalf("Settle: %v", err)
		}
	}

	// Never two events of one key at a time, and each key's oldest first
	// (a store may go one account at a time).
	delivered := map[string][]event.Delivery{} // by key
	first := lease(100)
	if len(first) == 0 {
		t.Fatal("Lease returned no event of three keys' creations")
	}
	leased := map[string]bool{}
	for _, d := range first {
		if leased[d.Event.KeyID] || d.Event.Type != event.KeyCreated || d.Attempts != 0 {
			t.Fatalf("first lease: %+v; want one creation per key, first attempt", first)
		}
		leased[d.Event.KeyID] = true
	}
	if more := lease(100); len(more) != 0 {
		t.Fatalf("a second Lease within the first's ttl returned %+v", more)
	}
	// keys[0]'s creation fails: due again in a minute, and its later
	// events wait behind it; the others are delivered.
	for i := range first {
		d := &first[i]
		if d.Event.KeyID == keys[0] {
			settle(d, false, now.Add(time.Minute))
			continue
		}
		settle(d, true, time.Time{})
		delivered[d.Event.KeyID] = append(delivered[d.Event.KeyID], *d)
	}
	for _, d := range lease(100) {
		if d.Event.KeyID == keys[0] {
			t.Fatalf("an event of a key whose delivery waits for a retry was leased: %+v", d)
		}
		settle(&d, true, time.Time{})
		delivered[d.Event.KeyID] = append(delivered[d.Event.KeyID], d)
	}
	if len(first) > 1 {
		settle(&first[1], true, time.Time{}) // settled already: nothing happens
	}

	now = now.Add(time.Minute)
	for range 10 {
		ds := lease(100)
		if len(ds) == 0 {
			break
		}
		keysNow := map[string]bool{}
		for i := range ds {
			if keysNow[ds[i].Event.KeyID] {
				t.Fatalf("Lease returned two events of one key at once: %+v", ds)
			}
			keysNow[ds[i].Event.KeyID] = true
			settle(&ds[i], true, time.Time{})
			delivered[ds[i].Event.KeyID] = append(delivered[ds[i].Event.KeyID], ds[i])
		}
	}
	got := delivered[keys[0]]
	if len(got) != 3 || got[0].Attempts != 1 || len(delivered[keys[1]]) != 1 || len(delivered[keys[2]]) != 1 {
		t.Fatalf("delivered %d, %d and %d events of the three keys (the first retried %d times); want 3, 1, 1 and once",
			len(got), len(delivered[keys[1]]), len(delivered[keys[2]]), got[0].Attempts)
	}
	var ids []string
	for _, e := range trail.Items {
		if e.KeyID == keys[0] {
			ids = append([]string{e.ID}, ids...) // the trail is newest first
		}
	}
	for i, d := range got {
		if d.Event.ID != ids[i] {
			t.Fatalf("delivery %d has ID %s, want its audit event's %s (in order: %v)", i, d.Event.ID, ids[i], ids)
		}
	}

	// An expired lease is leased again.
	if _, err := svc.Create(ctx(), apikey.CreateParams{Owner: owner}); err != nil {
		t.Fatal(err)
	}
	if len(lease(10)) != 1 {
		t.Fatal("a new event was not leased")
	}
	now = now.Add(time.Minute)
	again := lease(10)
	if len(again) != 1 {
		t.Fatal("an event whose lease expired was not leased again")
	}
	settle(&again[0], true, time.Time{})

	// Two instances leasing at once share the events, never both one.
	for i := range 20 {
		if _, err := svc.Create(ctx(), apikey.CreateParams{Owner: "acct_outbox_" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				ds, err := box.Lease(ctx(), now, 3, time.Minute)
				if err != nil {
					t.Errorf("Lease: %v", err)
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen = append(seen, d.Event.Account+"/"+d.Event.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seen)
	if len(seen) != 20 || len(slices.Compact(seen)) != 20 {
		t.Fatalf("concurrent leases returned %d events (%d distinct), want each of 20 once", len(seen), len(slices.Compact(slices.Clone(seen))))
	}
}

// testFacts checks that a fact is recorded once: of eight instances
// claiming it at once one writes its event, to the audit trail and, when
// the store keeps one, to the outbox; later claims write nothing.
func testFacts(t *testing.T, s apikey.Store) {
	facts, ok := s.(event.Facts)
	if !ok {
		t.Skip("the store records no facts (event.Facts)")
	}
	svc, clock := newService(t, s)
	const owner = "acct_facts"
	issued, err := svc.Create(ctx(), apikey.CreateParams{Owner: owner, ExpiresAt: epoch.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	box, _ := s.(event.Outbox)
	if box != nil { // the creation's delivery, out of the way
		ds, err := box.Lease(ctx(), clock.Now(), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ds {
			if err := box.Settle(ctx(), &ds[i], true, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	fact := "key.expiring/" + issued.Key.ID + "/1d/" + strconv.FormatInt(issued.Key.ExpiresAt.Unix(), 10)
	ev := event.Event{Type: event.KeyExpiring, KeyID: issued.Key.ID, Account: owner, At: clock.Now(),
		Data: map[string]string{"threshold": "1d", "expires_at": issued.Key.ExpiresAt.Format(time.RFC3339)}}
	var wrote sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for range 8 {
		wrote.Go(func() {
			e := ev
			ok, err := facts.Once(ctx(), fact, &e)
			if err != nil {
				t.Errorf("Once: %v", err)
			}
			if ok {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wrote.Wait()
	if n != 1 {
		t.Fatalf("%d of 8 claims of one fact wrote its event, want 1", n)
	}
	if ok, err := facts.Once(ctx(), fact, &ev); ok || err != nil {
		t.Fatalf("a later claim: %v, %v; want false, nil", ok, err)
	}
	trail, err := svc.Events(ctx(), owner, issued.Key.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(trail.Items) != 2 || trail.Items[0].Type != event.KeyExpiring || trail.Items[0].Data["threshold"] != "1d" {
		t.Fatalf("the audit trail holds %+v; want the creation and the fact, once, with its data", trail.Items)
	}
	if box != nil {
		ds, err := box.Lease(ctx(), clock.Now(), 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].Event.Type != event.KeyExpiring || ds[0].Event.ID != trail.Items[0].ID {
			t.Fatalf("the outbox holds %+v; want the fact once, under its audit ID", ds)
		}
	}
}

// testDeliveryLog checks that a store keeps each account endpoint's
// latest delivery attempts, newest first, and no other's.
func testDeliveryLog(t *testing.T, s apikey.Store) {
	log, ok := s.(event.DeliveryLog)
	if !ok {
		t.Skip("the store keeps no delivery log (event.DeliveryLog)")
	}
	at := epoch
	for i := range event.MaxAttempts + 5 {
		a := &event.Attempt{ID: "dlv_" + strconv.Itoa(i), Endpoint: "whep_1", Status: "failed", Error: "refused", At: at.Add(time.Duration(i) * time.Second),
			Event: event.Event{ID: strconv.Itoa(i), Type: event.KeyRevoked, KeyID: "k", Account: "acct_log", At: at, Data: map[string]string{"n": strconv.Itoa(i)}}}
		if err := log.LogAttempt(ctx(), "acct_log", a); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.LogAttempt(ctx(), "acct_log", &event.Attempt{ID: "dlv_other", Endpoint: "whep_2", Status: "delivered", Code: 200, At: at}); err != nil {
		t.Fatal(err)
	}
	got, err := log.Attempts(ctx(), "acct_log", "whep_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != event.MaxAttempts || got[0].ID != "dlv_"+strconv.Itoa(event.MaxAttempts+4) || got[len(got)-1].ID != "dlv_5" {
		t.Fatalf("the log holds %d attempts, from %s to %s; want the latest %d, newest first", len(got), got[0].ID, got[len(got)-1].ID, event.MaxAttempts)
	}
	first := got[0]
	if first.Status != "failed" || first.Error != "refused" || !first.At.Equal(at.Add(time.Duration(event.MaxAttempts+4)*time.Second)) ||
		first.Event.Type != event.KeyRevoked || first.Event.Data["n"] != strconv.Itoa(event.MaxAttempts+4) {
		t.Fatalf("an attempt came back as %+v", first)
	}
	if other, err := log.Attempts(ctx(), "acct_log", "whep_2"); err != nil || len(other) != 1 || other[0].Code != 200 {
		t.Fatalf("another endpoint's log: %+v, %v", other, err)
	}
	if none, err := log.Attempts(ctx(), "acct_other", "whep_1"); err != nil || len(none) != 0 {
		t.Fatalf("another account's endpoint of the same ID: %+v, %v", none, err)
	}
}
