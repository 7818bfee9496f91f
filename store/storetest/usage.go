package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
)

// testUsage runs only for stores that implement [usage.Store].
func testUsage(t *testing.T, s apikey.Store) {
	us, ok := s.(usage.Store)
	if !ok {
		t.Skip("the store does not implement usage.Store")
	}
	a, b := record("acct_a"), record("acct_a")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	t1 := epoch.Add(time.Hour)
	err := us.AddUsage(ctx(), []usage.Delta{
		{KeyID: a.ID, Requests: 3, Errors: 1, LastUsedAt: t1, ByEndpoint: map[string]int64{"GET /a": 2, "POST /a": 1}},
		{KeyID: b.ID, Requests: 1, LastUsedAt: t1, ByEndpoint: map[string]int64{"GET /b": 1}},
		{KeyID: "no-such-id", Requests: 7, LastUsedAt: t1, ByEndpoint: map[string]int64{"GET /x": 7}},
	})
	if err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
	err = us.AddUsage(ctx(), []usage.Delta{
		{KeyID: a.ID, Requests: 2, Errors: 2, LastUsedAt: epoch, ByEndpoint: map[string]int64{"GET /a": 2}},
	})
	if err != nil {
		t.Fatalf("second AddUsage: %v", err)
	}
	u, err := us.Usage(ctx(), a.ID)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.TotalRequests != 5 || u.Errors != 3 || !u.LastUsedAt.Equal(t1) ||
		u.ByEndpoint["GET /a"] != 4 || u.ByEndpoint["POST /a"] != 1 || len(u.ByEndpoint) != 2 {
		t.Fatalf("Usage = %+v, want 5 requests, 3 errors, last used %v, GET /a 4, POST /a 1", u, t1)
	}
	for _, id := range []string{"no-such-id", "never-used"} {
		u, err := us.Usage(ctx(), id)
		if err != nil || u.TotalRequests != 0 || len(u.ByEndpoint) != 0 {
			t.Fatalf("Usage(%s) = %+v, %v; want zero, nil", id, u, err)
		}
	}
	if err := s.Delete(ctx(), a.ID, nil); err != nil {
		t.Fatal(err)
	}
	if u, err := us.Usage(ctx(), a.ID); err != nil || u.TotalRequests != 0 {
		t.Fatalf("Usage after Delete = %+v, %v; want zero", u, err)
	}
}

// testUsageBoundsEndpoints: however many distinct endpoints a key's
// clients make up, over however many batches, a store keeps at most
// usage.MaxEndpoints of them and counts the rest as usage.OtherEndpoint.
func testUsageBoundsEndpoints(t *testing.T, s apikey.Store) {
	us, ok := s.(usage.Store)
	if !ok {
		t.Skip("the store does not implement usage.Store")
	}
	a := record("acct_a")
	mustCreate(t, s, a)
	const batches, perBatch = 5, 40
	for b := range batches {
		d := usage.Delta{KeyID: a.ID, Requests: perBatch, LastUsedAt: epoch, ByEndpoint: map[string]int64{}}
		for e := range perBatch {
			d.ByEndpoint[fmt.Sprintf("FOO%d /x", b*perBatch+e)] = 1
		}
		if err := us.AddUsage(ctx(), []usage.Delta{d}); err != nil {
			t.Fatalf("AddUsage: %v", err)
		}
	}
	u, err := us.Usage(ctx(), a.ID)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	var sum int64
	for _, n := range u.ByEndpoint {
		sum += n
	}
	if len(u.ByEndpoint) != usage.MaxEndpoints+1 || sum != batches*perBatch ||
		u.ByEndpoint[usage.OtherEndpoint] != batches*perBatch-usage.MaxEndpoints {
		t.Fatalf("%d endpoints kept (want %d and %q), %d requests counted (want %d), %d as %q",
			len(u.ByEndpoint), usage.MaxEndpoints, usage.OtherEndpoint, sum, batches*perBatch,
			u.ByEndpoint[usage.OtherEndpoint], usage.OtherEndpoint)
	}
}
