package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
)

// testAccounts runs only for stores that implement [apikey.AccountStore]:
// create once, update only what exists, read back what was written
// (plan, custom limits, credits).
func testAccounts(t *testing.T, s apikey.Store) {
	as, ok := s.(apikey.AccountStore)
	if !ok {
		t.Skip("the store does not implement apikey.AccountStore")
	}
	if _, err := as.Account(ctx(), "acct_none"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Account of an unknown ID: %v, want ErrNotFound", err)
	}
	a := &apikey.Account{ID: "acct_a", Plan: "free", UpdatedAt: epoch}
	if err := as.PutAccount(ctx(), &apikey.Account{ID: "acct_a", Plan: "free"}, false); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("updating an unknown account: %v, want ErrNotFound", err)
	}
	if _, err := as.Account(ctx(), "acct_a"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("a refused update stored the account: %v", err)
	}
	if err := as.PutAccount(ctx(), a, true); err != nil {
		t.Fatalf("creating: %v", err)
	}
	if err := as.PutAccount(ctx(), &apikey.Account{ID: "acct_a", Plan: "business"}, true); !errors.Is(err, apikey.ErrDuplicate) {
		t.Fatalf("creating twice: %v, want ErrDuplicate", err)
	}
	custom := &apikey.Account{ID: "acct_a", Plan: "starter", UpdatedAt: epoch.Add(time.Hour),
		Limits: []apikey.Limit{{Limit: 5000, Period: time.Minute}, {Limit: 1_000_000, Period: 24 * time.Hour}},
		Credits: &apikey.Credits{Balance: 100, RefillAmount: 50, RefillPeriod: apikey.RefillMonth, RefillMode: apikey.RefillAdd,
			RefillAt: epoch.AddDate(0, 1, 0), GrantedAt: epoch.Add(time.Hour)}}
	if err := as.PutAccount(ctx(), custom, false); err != nil {
		t.Fatalf("updating: %v", err)
	}
	got, err := as.Account(ctx(), "acct_a")
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if got.ID != "acct_a" || got.Plan != "starter" || !got.UpdatedAt.Equal(custom.UpdatedAt) ||
		fmt.Sprint(got.Limits) != fmt.Sprint(custom.Limits) || got.Credits == nil || got.Credits.Balance != 100 ||
		got.Credits.RefillAmount != 50 || got.Credits.RefillPeriod != "month" || got.Credits.RefillMode != "add" ||
		!got.Credits.RefillAt.Equal(custom.Credits.RefillAt) || !got.Credits.GrantedAt.Equal(custom.Credits.GrantedAt) {
		t.Fatalf("Account = %+v, want %+v", got, custom)
	}
}

// testAccountCreateRace: of many concurrent creates of one account,
// exactly one succeeds.
func testAccountCreateRace(t *testing.T, s apikey.Store) {
	as, ok := s.(apikey.AccountStore)
	if !ok {
		t.Skip("the store does not implement apikey.AccountStore")
	}
	var won atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := as.PutAccount(ctx(), &apikey.Account{ID: "acct_race", Plan: fmt.Sprint("p", i), UpdatedAt: epoch}, true)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, apikey.ErrDuplicate):
				t.Errorf("PutAccount: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of 20 concurrent creates of one account succeeded, want 1", won.Load())
	}
}
