package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/storetest"
)

// The whole conformance suite, in three lines.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apikey.Store {
		s, err := openFileStore(filepath.Join(t.TempDir(), "keys.json"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Keys and accounts survive a restart: a new fileStore on the same file
// verifies the keys and knows their accounts' plans and limits.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := openFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apikey.Config{Plans: ratelimit.DefaultPlans()}
	svc, _ := apikey.New(s, cfg)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetAccount(ctx, apikey.Account{ID: "acct", Plan: "business", Limits: []ratelimit.Window{{Limit: 100, Monthly: true}}}); err != nil {
		t.Fatal(err)
	}
	reopened, err := openFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	svc2, _ := apikey.New(reopened, cfg)
	p, err := svc2.Verify(ctx, issued.Secret.Reveal())
	if err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if a := p.Account(); a.Plan != "business" || len(a.Limits) != 1 || !a.Limits[0].Monthly {
		t.Fatalf("after reopening, the account is %+v; want business with a monthly limit", a)
	}
}

// A file that cannot be written leaves memory unchanged.
func TestFailedWriteChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, err := openFileStore(filepath.Join(t.TempDir(), "missing-dir", "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := apikey.New(s, apikey.Config{})
	if _, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct"}); err == nil {
		t.Fatal("Create succeeded without a writable file")
	}
	if page, _ := svc.ListPage(ctx, "acct", "", 100); len(page.Items) != 0 {
		t.Fatalf("a failed write left %d keys in memory", len(page.Items))
	}
}
