package storetest

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/base62"
)

// testRouter checks a store that routes ([apikey.Router]): routes of one
// length and alphabet; keys the Service issues carry their account's
// route in their text and ID, and verify; and a record stored without a
// route (as before the store routed) is found whatever its text holds
// where a route would be.
func testRouter(t *testing.T, s apikey.Store) {
	r, ok := s.(apikey.Router)
	if !ok || r.Route("acct_a") == "" {
		t.Skip("the store does not implement apikey.Router")
	}
	n := len(r.Route("acct_a"))
	for _, owner := range []string{"acct_a", "acct_b", "a{b}", "~x", strings.Repeat("é", 100)} {
		route := r.Route(owner)
		if len(route) != n || n > 4 || !base62.Valid(route) {
			t.Fatalf("Route(%q) = %q: want %d base62 characters, as for every owner", owner, route, n)
		}
		if r.Route(owner) != route {
			t.Fatalf("Route(%q) changes from call to call", owner)
		}
	}
	svc, _ := newService(t, s)
	for _, owner := range []string{"acct_a", "acct_b"} {
		issued := mustIssue(t, svc, apikey.CreateParams{Owner: owner})
		key, route := issued.Secret.Reveal(), r.Route(owner)
		if !strings.HasPrefix(key, "kg_live_"+route) || !strings.HasPrefix(issued.Key.ID, route+"_") {
			t.Fatalf("the key of %s (ID %s) does not carry its route %q", owner, issued.Key.ID, route)
		}
		wantVerify(t, svc, key, nil)
		rec, err := s.Lookup(ctx(), apikey.Hash(sha256.Sum256([]byte(key))), route)
		if err != nil || rec.Route != route {
			t.Fatalf("Lookup with the route: %+v, %v; want the record, with its route", rec, err)
		}
	}
	old := record("acct_a") // stored as before routes: no route
	mustCreate(t, s, old)
	for _, route := range []string{"", r.Route("acct_a"), r.Route("acct_b")} {
		if rec, err := s.Lookup(ctx(), old.Hash, route); err != nil || rec.ID != old.ID {
			t.Fatalf("Lookup of a record without a route, given %q: %v, %v", route, rec, err)
		}
	}
}
