package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/ratelimit"
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
	a := &apikey.Account{ID: "acct_a", Plan: "free", UpdatedAt: epoch, Version: 1}
	if err := as.PutAccount(ctx(), a, &apikey.Account{ID: "acct_a", Plan: "free", Version: 2}); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("updating an unknown account: %v, want ErrNotFound", err)
	}
	if _, err := as.Account(ctx(), "acct_a"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("a refused update stored the account: %v", err)
	}
	if err := as.PutAccount(ctx(), nil, a); err != nil {
		t.Fatalf("creating: %v", err)
	}
	if err := as.PutAccount(ctx(), nil, &apikey.Account{ID: "acct_a", Plan: "business", Version: 1}); !errors.Is(err, apikey.ErrDuplicate) {
		t.Fatalf("creating twice: %v, want ErrDuplicate", err)
	}
	custom := &apikey.Account{ID: "acct_a", Plan: "starter", UpdatedAt: epoch.Add(time.Hour), Version: 2,
		Limits: []ratelimit.Window{{Limit: 5000, Period: time.Minute}, {Limit: 1_000_000, Period: 24 * time.Hour}},
		Credits: &ratelimit.Credits{Balance: 100, Refill: 50, Monthly: true, Add: true,
			RefillAt: epoch.AddDate(0, 1, 0), Granted: epoch.Add(time.Hour)}}
	if err := as.PutAccount(ctx(), a, custom); err != nil {
		t.Fatalf("updating: %v", err)
	}
	// A change made to the copy that custom replaced must be refused.
	stale := &apikey.Account{ID: "acct_a", Plan: "business", UpdatedAt: epoch.Add(2 * time.Hour), Version: 2}
	if err := as.PutAccount(ctx(), a, stale); !errors.Is(err, apikey.ErrConflict) {
		t.Fatalf("updating from a copy that is no longer stored: %v, want ErrConflict", err)
	}
	got, err := as.Account(ctx(), "acct_a")
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if got.ID != "acct_a" || got.Plan != "starter" || got.Version != 2 || !got.UpdatedAt.Equal(custom.UpdatedAt) ||
		fmt.Sprint(got.Limits) != fmt.Sprint(custom.Limits) || got.Credits == nil || got.Credits.Balance != 100 ||
		got.Credits.Refill != 50 || !got.Credits.Monthly || !got.Credits.Add ||
		!got.Credits.RefillAt.Equal(custom.Credits.RefillAt) || !got.Credits.Granted.Equal(custom.Credits.Granted) {
		t.Fatalf("Account = %+v, want %+v", got, custom)
	}
}

// testAccountCreateRace: of many concurrent creates of one account,
// exactly one succeeds; of many concurrent changes of the same stored
// version, exactly one succeeds too.
func testAccountCreateRace(t *testing.T, s apikey.Store) {
	as, ok := s.(apikey.AccountStore)
	if !ok {
		t.Skip("the store does not implement apikey.AccountStore")
	}
	race := func(put func(i int) error) int64 {
		var won atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				switch err := put(i); {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, apikey.ErrDuplicate) && !errors.Is(err, apikey.ErrConflict):
					t.Errorf("PutAccount: %v", err)
				}
			})
		}
		wg.Wait()
		return won.Load()
	}
	if won := race(func(i int) error {
		return as.PutAccount(ctx(), nil, &apikey.Account{ID: "acct_race", Plan: fmt.Sprint("p", i), UpdatedAt: epoch, Version: 1})
	}); won != 1 {
		t.Fatalf("%d of 20 concurrent creates of one account succeeded, want 1", won)
	}
	prev, err := as.Account(ctx(), "acct_race")
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	if won := race(func(i int) error {
		return as.PutAccount(ctx(), prev, &apikey.Account{ID: "acct_race", Plan: fmt.Sprint("q", i), UpdatedAt: epoch, Version: 2})
	}); won != 1 {
		t.Fatalf("%d of 20 concurrent changes of one account version succeeded, want 1", won)
	}
}
