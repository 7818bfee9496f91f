package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/cachestore"
)

// Invalidation checks a store's [apikey.ChangeFeed] across instances: it
// reports key and account changes apart, by hash and by ID; and of two
// instances, each a store from newStore on one shared backend behind its
// own cache (TTL an hour), a key revoked, rotated, deleted or disabled
// through one must be refused by the other within the given bound, an
// enabled or updated key seen as it now is, and an account changed
// through both at once keeps both changes.
// newStore must return a new store on the same, migrated backend each
// time. It uses only the standard testing package.
func Invalidation(t *testing.T, within time.Duration, newStore func(t *testing.T) apikey.Store) {
	ctx := context.Background()
	instance := func() (*apikey.Service, *cachestore.Store) {
		cache, err := cachestore.New(newStore(t), cachestore.Config{TTL: time.Hour, StaleTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cache.Close() })
		svc, err := apikey.New(cache, apikey.Config{Plans: ratelimit.DefaultPlans()})
		if err != nil {
			t.Fatal(err)
		}
		return svc, cache
	}
	a, cacheA := instance()
	b, cacheB := instance()
	deadline := time.Now().Add(10 * time.Second)
	for !cacheA.Healthy() || !cacheB.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("the invalidation feeds never reported healthy")
		}
		time.Sleep(time.Millisecond)
	}
	for _, op := range []string{"revoke", "rotate", "delete"} {
		t.Run(op, func(t *testing.T) {
			owner := "acct_" + op
			issued, err := a.Create(ctx, apikey.CreateParams{Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			key := issued.Secret.Reveal()
			if _, err := b.Verify(ctx, key); err != nil {
				t.Fatalf("the other instance could not verify the key: %v", err)
			}
			switch op {
			case "revoke":
				err = a.Revoke(ctx, owner, issued.Key.ID)
			case "rotate":
				_, err = a.Rotate(ctx, owner, issued.Key.ID, 0)
			case "delete":
				err = a.Delete(ctx, owner, issued.Key.ID)
			}
			if err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			start := time.Now()
			for {
				if _, err := b.Verify(ctx, key); err != nil {
					break
				}
				if time.Since(start) > within {
					t.Fatalf("the other instance still verified the key %v after the %s", within, op)
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("%s reached the other instance in %v", op, time.Since(start))
		})
	}
	t.Run("disable and enable", func(t *testing.T) {
		owner := "acct_disable"
		issued, err := a.Create(ctx, apikey.CreateParams{Owner: owner, Name: "before"})
		if err != nil {
			t.Fatal(err)
		}
		key := issued.Secret.Reveal()
		if _, err := b.Verify(ctx, key); err != nil {
			t.Fatalf("the other instance could not verify the key: %v", err)
		}
		// seen waits until the other instance's answer satisfies ok.
		seen := func(what string, ok func(apikey.Principal, error) bool) {
			t.Helper()
			start := time.Now()
			for {
				if ok(b.Verify(ctx, key)) {
					break
				}
				if time.Since(start) > within {
					t.Fatalf("the other instance did not see the %s within %v", what, within)
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("the %s reached the other instance in %v", what, time.Since(start))
		}
		if _, err := a.Disable(ctx, owner, issued.Key.ID); err != nil {
			t.Fatalf("Disable: %v", err)
		}
		seen("disable", func(_ apikey.Principal, err error) bool { return errors.Is(err, apikey.ErrInvalidKey) })
		if _, err := a.Enable(ctx, owner, issued.Key.ID); err != nil {
			t.Fatalf("Enable: %v", err)
		}
		seen("enable", func(_ apikey.Principal, err error) bool { return err == nil })
		if _, err := a.Update(ctx, owner, issued.Key.ID, func(p *apikey.UpdateParams) { p.Name = "after" }); err != nil {
			t.Fatalf("Update: %v", err)
		}
		seen("update", func(p apikey.Principal, err error) bool { return err == nil && p.Key().Name == "after" })
	})
	t.Run("account", func(t *testing.T) {
		owner := "acct_plan"
		issued, err := a.Create(ctx, apikey.CreateParams{Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		key := issued.Secret.Reveal()
		p, err := b.Verify(ctx, key)
		if err != nil {
			t.Fatalf("the other instance could not verify the key: %v", err)
		}
		if p.Account().Plan != "free" {
			t.Fatalf("a new account's plan: %q, want the default, free", p.Account().Plan)
		}
		if err := a.SetAccount(ctx, apikey.Account{ID: owner, Plan: "business"}); errors.Is(err, errors.ErrUnsupported) {
			t.Skip("the store keeps no accounts")
		} else if err != nil {
			t.Fatalf("SetAccount: %v", err)
		}
		start := time.Now()
		for {
			p, err := b.Verify(ctx, key)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Account().Plan == "business" {
				break
			}
			if time.Since(start) > within {
				t.Fatalf("the other instance still saw the old plan %v after the change", within)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("the plan change reached the other instance in %v", time.Since(start))
	})
	t.Run("account changes on both instances", func(t *testing.T) {
		// Each instance has the account cached when the other changes
		// it: a write-back of a cached copy would lose the other's change.
		direct, ok := newStore(t).(apikey.AccountStore)
		if !ok {
			t.Skip("the store keeps no accounts")
		}
		for round := range 20 {
			id := fmt.Sprintf("acct_both_%d", round)
			if err := a.CreateAccount(ctx, apikey.Account{ID: id, Plan: "free", Credits: &ratelimit.Credits{Balance: 5}}); err != nil {
				t.Fatalf("CreateAccount: %v", err)
			}
			for _, svc := range []*apikey.Service{a, b} {
				if _, err := svc.Account(ctx, id); err != nil {
					t.Fatalf("Account: %v", err)
				}
			}
			var credited apikey.Account
			var errA, errB error
			var wg sync.WaitGroup
			wg.Go(func() {
				credited, errA = a.UpdateAccount(ctx, id, func(acct *apikey.Account) error {
					acct.Credits = &ratelimit.Credits{Balance: int64(1000 + round)}
					return nil
				})
			})
			wg.Go(func() {
				// The plan follows 0 to 50 ms later.
				time.Sleep(time.Duration(round) * 50 * time.Millisecond / 19)
				_, errB = b.UpdateAccount(ctx, id, func(acct *apikey.Account) error {
					acct.Plan = "business"
					return nil
				})
			})
			wg.Wait()
			if errA != nil || errB != nil {
				stored, err := direct.Account(ctx, id)
				t.Fatalf("round %d: credits: %v (wrote version %d), plan: %v; stored: %+v, %v", round, errA, credited.Version, errB, stored, err)
			}
			got, err := direct.Account(ctx, id)
			if err != nil {
				t.Fatalf("Account: %v", err)
			}
			if got.Plan != "business" || got.Credits == nil || got.Credits.Balance != int64(1000+round) {
				t.Fatalf("round %d: stored %+v (credits %+v), want the business plan and a balance of %d", round, got, got.Credits, 1000+round)
			}
			// Nothing re-granted: the plan change kept the credits' grant.
			if !got.Credits.Granted.Equal(credited.Credits.Granted) {
				t.Fatalf("round %d: the credits were granted again at %v, after %v", round, got.Credits.Granted, credited.Credits.Granted)
			}
		}
	})
	t.Run("the feed reports keys and accounts apart", func(t *testing.T) {
		feed, ok := newStore(t).(apikey.ChangeFeed)
		if !ok {
			t.Fatal("the store is no apikey.ChangeFeed")
		}
		keys, accounts, up := make(chan apikey.Hash, 100), make(chan string, 100), make(chan bool, 100)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- feed.WatchChanges(wctx, func(h apikey.Hash) { keys <- h }, func(id string) { accounts <- id }, func(ok bool) { up <- ok })
		}()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("WatchChanges returned %v when its context ended", err)
			}
		}()
		if !<-up {
			t.Fatal("the feed first reported itself broken")
		}
		issued, err := a.Create(ctx, apikey.CreateParams{Owner: "acct_feed"})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Revoke(ctx, "acct_feed", issued.Key.ID); err != nil {
			t.Fatal(err)
		}
		if err := a.SetAccount(ctx, apikey.Account{ID: "acct_feed", Plan: "business"}); err != nil {
			t.Fatal(err)
		}
		guard := time.After(within)
		sawKey, sawAccount := false, false
		for !sawKey || !sawAccount {
			select {
			// A feed may also report changes made before it started.
			case h := <-keys:
				if h == (apikey.Hash{}) {
					t.Fatal("a key change with a zero hash")
				}
				sawKey = sawKey || h == apikey.Hash(sha256.Sum256([]byte(issued.Secret.Reveal())))
			case id := <-accounts:
				sawAccount = sawAccount || id == "acct_feed"
			case <-guard:
				t.Fatalf("within %v: the key's change seen %v, the account's %v", within, sawKey, sawAccount)
			}
		}
	})
}
