package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testclock"
)

// defaultMaxActiveKeys is the per-owner limit of an apikey.Service whose
// Config.MaxActiveKeys is 0.
const defaultMaxActiveKeys = 10

func newService(t *testing.T, s apikey.Store) (*apikey.Service, *testclock.Clock) {
	t.Helper()
	c := testclock.New(epoch)
	svc, err := apikey.New(s, apikey.Config{Clock: c.Now})
	if err != nil {
		t.Fatalf("apikey.New: %v", err)
	}
	return svc, c
}

func mustIssue(t *testing.T, svc *apikey.Service, p apikey.CreateParams) apikey.Issued {
	t.Helper()
	if p.Owner == "" {
		p.Owner = "acct_a"
	}
	issued, err := svc.Create(ctx(), p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return issued
}

func wantVerify(t *testing.T, svc *apikey.Service, key string, want error) apikey.Principal {
	t.Helper()
	p, err := svc.Verify(ctx(), key)
	if want == nil && err != nil {
		t.Fatalf("Verify: %v, want success", err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("Verify: %v, want %v", err, want)
	}
	return p
}

func testHashOnly(t *testing.T, s apikey.Store) {
	svc, _ := newService(t, s)
	issued := mustIssue(t, svc, apikey.CreateParams{Name: "backend", Description: "hash only"})
	key := issued.Secret.Reveal()
	hidden := key[len(issued.Key.DisplayPrefix):]

	rec, err := s.Lookup(ctx(), apikey.Hash(sha256.Sum256([]byte(key))), routeOf(s, issued.Key.Owner))
	if err != nil {
		t.Fatalf("Lookup(SHA-256 of the key): %v", err)
	}
	for name, text := range map[string]string{
		"%+v of the stored record": fmt.Sprintf("%+v", *rec),
		"%#v of the stored record": fmt.Sprintf("%#v", *rec),
		"Get":                      fmt.Sprintf("%+v", *mustGet(t, s, issued.Key.ID)),
	} {
		if strings.Contains(text, hidden) {
			t.Fatalf("%s contains the key text", name)
		}
	}
}

func testServiceVerify(t *testing.T, s apikey.Store) {
	svc, c := newService(t, s)
	plain := mustIssue(t, svc, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read, apikey.Write}, ProjectID: "proj_1"})
	p := wantVerify(t, svc, plain.Secret.Reveal(), nil)
	if p.KeyID() != plain.Key.ID || p.Owner() != "acct_a" || !p.Has(apikey.Write) || p.Has(apikey.Delete) || p.ProjectID() != "proj_1" {
		t.Fatalf("principal %v does not match the issued key", p)
	}

	expiring := mustIssue(t, svc, apikey.CreateParams{ExpiresAt: epoch.Add(time.Hour)})
	pending := mustIssue(t, svc, apikey.CreateParams{NotBefore: epoch.Add(time.Minute)})
	wantVerify(t, svc, expiring.Secret.Reveal(), nil)
	wantVerify(t, svc, pending.Secret.Reveal(), apikey.ErrNotYetValid)
	c.Advance(time.Minute)
	wantVerify(t, svc, pending.Secret.Reveal(), nil)
	c.Advance(59 * time.Minute)
	wantVerify(t, svc, expiring.Secret.Reveal(), apikey.ErrExpired)

	if err := svc.Revoke(ctx(), "acct_a", plain.Key.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	wantVerify(t, svc, plain.Secret.Reveal(), apikey.ErrInvalidKey)
	if err := svc.Delete(ctx(), "acct_a", pending.Key.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantVerify(t, svc, pending.Secret.Reveal(), apikey.ErrInvalidKey)

	wantVerify(t, svc, "not a key", apikey.ErrMalformed)

	// 100 concurrent creates for one owner: exactly the default 10 succeed.
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Create(ctx(), apikey.CreateParams{Owner: "acct_many"})
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
	wg.Wait()
	if ok.Load() != defaultMaxActiveKeys || limited.Load() != 100-defaultMaxActiveKeys {
		t.Fatalf("100 concurrent creates: %d succeeded, %d limited; want %d and %d",
			ok.Load(), limited.Load(), defaultMaxActiveKeys, 100-defaultMaxActiveKeys)
	}
}

func testServiceRotateNoGrace(t *testing.T, s apikey.Store) {
	svc, _ := newService(t, s)
	old := mustIssue(t, svc, apikey.CreateParams{Name: "ci", Permissions: []apikey.Permission{apikey.Read}})
	repl, err := svc.Rotate(ctx(), "acct_a", old.Key.ID, 0)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if repl.Key.ID == old.Key.ID || repl.Key.Name != "ci" || !repl.Key.Permissions.Has(apikey.Read) {
		t.Fatalf("replacement %+v does not carry the old key's attributes", repl.Key)
	}
	wantVerify(t, svc, old.Secret.Reveal(), apikey.ErrExpired)
	wantVerify(t, svc, repl.Secret.Reveal(), nil)
	if _, err := svc.Rotate(ctx(), "acct_a", old.Key.ID, 0); !errors.Is(err, apikey.ErrRotated) {
		t.Fatalf("rotating a rotated key: %v, want ErrRotated", err)
	}
}

func testServiceRotateGrace(t *testing.T, s apikey.Store) {
	svc, c := newService(t, s)
	old := mustIssue(t, svc, apikey.CreateParams{})
	repl, err := svc.Rotate(ctx(), "acct_a", old.Key.ID, time.Hour)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	wantVerify(t, svc, old.Secret.Reveal(), nil)
	wantVerify(t, svc, repl.Secret.Reveal(), nil)
	if _, err := svc.Rotate(ctx(), "acct_a", old.Key.ID, time.Hour); !errors.Is(err, apikey.ErrRotated) {
		t.Fatalf("second rotation of the same key, inside its grace period: %v, want ErrRotated", err)
	}
	c.Advance(time.Hour - time.Nanosecond)
	wantVerify(t, svc, old.Secret.Reveal(), nil)
	c.Advance(time.Nanosecond)
	wantVerify(t, svc, old.Secret.Reveal(), apikey.ErrExpired)
	wantVerify(t, svc, repl.Secret.Reveal(), nil)
}

// testServiceRotateAtLimit: during a grace period both keys verify, so
// both count toward the owner's limit.
func testServiceRotateAtLimit(t *testing.T, s apikey.Store) {
	svc, _ := newService(t, s)
	var last apikey.Issued
	for range defaultMaxActiveKeys {
		last = mustIssue(t, svc, apikey.CreateParams{})
	}
	if _, err := svc.Rotate(ctx(), "acct_a", last.Key.ID, time.Hour); !errors.Is(err, apikey.ErrTooManyKeys) {
		t.Fatalf("rotation with grace at the limit: %v, want ErrTooManyKeys", err)
	}
	if k, err := svc.Get(ctx(), "acct_a", last.Key.ID); err != nil || k.ReplacedBy != "" {
		t.Fatalf("a refused rotation changed the key: %+v, %v", k, err)
	}
	if _, err := svc.Rotate(ctx(), "acct_a", last.Key.ID, 0); err != nil {
		t.Fatalf("rotation without grace at the limit: %v", err)
	}
	page, err := svc.ListPage(ctx(), "acct_a", "", 100)
	keys := page.Items
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, k := range keys {
		if k.Active(epoch) {
			active++
		}
	}
	if active != defaultMaxActiveKeys {
		t.Fatalf("%d active keys after rotating at the limit, want %d", active, defaultMaxActiveKeys)
	}
}

func testServiceOtherOwner(t *testing.T, s apikey.Store) {
	svc, _ := newService(t, s)
	issued := mustIssue(t, svc, apikey.CreateParams{Owner: "acct_a"})
	id := issued.Key.ID
	_, err := svc.Get(ctx(), "acct_b", id)
	wantErr(t, "Get by another owner", err, apikey.ErrNotFound)
	wantErr(t, "Revoke by another owner", svc.Revoke(ctx(), "acct_b", id), apikey.ErrNotFound)
	_, err = svc.Rotate(ctx(), "acct_b", id, 0)
	wantErr(t, "Rotate by another owner", err, apikey.ErrNotFound)
	wantErr(t, "Delete by another owner", svc.Delete(ctx(), "acct_b", id), apikey.ErrNotFound)
	if page, err := svc.ListPage(ctx(), "acct_b", "", 100); err != nil || len(page.Items) != 0 {
		t.Fatalf("ListPage(acct_b) = %v, %v; want empty", page.Items, err)
	}
	wantVerify(t, svc, issued.Secret.Reveal(), nil)
}

// testConcurrentVerifyRevoke verifies keys from many goroutines while they
// are revoked one by one: once Revoke has returned, no verification that
// starts afterwards may succeed.
func testConcurrentVerifyRevoke(t *testing.T, s apikey.Store) {
	svc, _ := newService(t, s)
	const keys, verifiers = 10, 8
	secrets := make([]string, keys)
	ids := make([]string, keys)
	for i := range keys {
		issued := mustIssue(t, svc, apikey.CreateParams{})
		secrets[i], ids[i] = issued.Secret.Reveal(), issued.Key.ID
	}
	var revoked [keys]atomic.Bool
	var done atomic.Bool
	var wg sync.WaitGroup
	for g := range verifiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !done.Load() || n < 2*keys; n++ {
				i := (g + n) % keys
				wasRevoked := revoked[i].Load()
				_, err := svc.Verify(ctx(), secrets[i])
				switch {
				case err == nil && wasRevoked:
					t.Errorf("key %d verified after its revocation returned", i)
					return
				case err != nil && !errors.Is(err, apikey.ErrInvalidKey):
					t.Errorf("Verify: %v", err)
					return
				}
			}
		}()
	}
	for i := range keys {
		if err := svc.Revoke(ctx(), "acct_a", ids[i]); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		revoked[i].Store(true)
	}
	done.Store(true)
	wg.Wait()
}

// routeOf returns the route of owner's keys when s routes ([apikey.Router]),
// which a Lookup of a key the Service issued passes.
func routeOf(s apikey.Store, owner string) string {
	if r, ok := s.(apikey.Router); ok {
		return r.Route(owner)
	}
	return ""
}
