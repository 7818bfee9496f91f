package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
)

// Issue a key, show it once, verify it, revoke it.
func Example() {
	ctx := context.Background()
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		panic(err)
	}

	issued, err := svc.Create(ctx, apikey.CreateParams{
		Owner:       "acct_42",
		Name:        "Production backend",
		Permissions: []apikey.Permission{apikey.Read, apikey.Write},
		ProjectID:   "proj_7",
	})
	if err != nil {
		panic(err)
	}
	key := issued.Secret.Reveal() // give this to the caller, once
	fmt.Println("printed:", issued.Secret)
	fmt.Println("prefix:", strings.HasPrefix(issued.Key.DisplayPrefix, "kg_live_"))

	p, err := svc.Verify(ctx, key)
	fmt.Println("verified:", err == nil, p.Owner(), p.Has(apikey.Write), p.Has(apikey.Delete), p.CanAccessProject("proj_8"))

	_ = svc.Revoke(ctx, "acct_42", issued.Key.ID)
	_, err = svc.Verify(ctx, key)
	fmt.Println("after revoke:", err)
	// Output:
	// printed: [REDACTED]
	// prefix: true
	// verified: true acct_42 true false false
	// after revoke: apikey: invalid key
}

// Reproduce existing key formats exactly, to take over keys another
// system issued.
func ExampleFormatConfig() {
	ctx := context.Background()
	// idc_ + 32 alphanumerics, no checksum
	idc, err := apikey.New(memstore.New(), apikey.Config{
		Format: apikey.FormatConfig{Prefix: "idc", BodyLength: 32, NoChecksum: true},
	})
	if err != nil {
		panic(err)
	}
	// sk_live_ or sk_test_ + 48 alphanumerics, no checksum
	sk, err := apikey.New(memstore.New(), apikey.Config{
		Format: apikey.FormatConfig{Prefix: "sk", Environments: []string{"live", "test"}, BodyLength: 48, NoChecksum: true},
	})
	if err != nil {
		panic(err)
	}
	a, _ := idc.Create(ctx, apikey.CreateParams{Owner: "acct"})
	b, _ := sk.Create(ctx, apikey.CreateParams{Owner: "acct", Environment: "test"})
	fmt.Println(len(a.Secret.Reveal()), a.Key.DisplayPrefix[:4], len(b.Secret.Reveal()), b.Key.DisplayPrefix[:8])

	_, err = idc.Verify(ctx, "idc_tooShort")
	fmt.Println(err, errors.Is(err, apikey.ErrMalformed))
	// Output:
	// 36 idc_ 56 sk_test_
	// apikey: malformed key: wrong length true
}

// Rotate a key with a grace period: both keys work until the old one's
// grace period ends.
func ExampleService_Rotate() {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	svc, _ := apikey.New(memstore.New(), apikey.Config{Clock: func() time.Time { return now }})

	old, _ := svc.Create(ctx, apikey.CreateParams{Owner: "acct_42"})
	repl, _ := svc.Rotate(ctx, "acct_42", old.Key.ID, 24*time.Hour)

	_, errOld := svc.Verify(ctx, old.Secret.Reveal())
	_, errNew := svc.Verify(ctx, repl.Secret.Reveal())
	fmt.Println("during grace:", errOld, errNew)

	now = now.Add(24 * time.Hour)
	_, errOld = svc.Verify(ctx, old.Secret.Reveal())
	fmt.Println("after grace:", errOld)
	// Output:
	// during grace: <nil> <nil>
	// after grace: apikey: key expired
}

// An owner holds at most 10 active keys by default.
func ExampleService_Create_limit() {
	ctx := context.Background()
	svc, _ := apikey.New(memstore.New(), apikey.Config{})
	for range 10 {
		_, _ = svc.Create(ctx, apikey.CreateParams{Owner: "acct_42"})
	}
	_, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_42"})
	fmt.Println(err, errors.Is(err, apikey.ErrTooManyKeys))
	// Output:
	// apikey: maximum number of active keys reached (10) true
}

// Change a key in place, pause it, and read who did what from the audit
// trail.
func ExampleService_Update() {
	ctx := context.Background()
	svc, _ := apikey.New(memstore.New(), apikey.Config{})
	issued, _ := svc.Create(ctx, apikey.CreateParams{Owner: "acct_42", Name: "ci", Permissions: []apikey.Permission{apikey.Read}})
	id := issued.Key.ID

	// Record who makes the changes (in a handler: the signed-in user).
	ctx = apikey.WithActor(ctx, apikey.Actor{ID: "alice@example.com", IP: "203.0.113.7"})
	key, err := svc.Update(ctx, "acct_42", id, func(p *apikey.UpdateParams) {
		p.Name = "deploy"
		p.Permissions = append(p.Permissions, apikey.Write)
	})
	if err != nil {
		panic(err) // ErrConflict when another change landed first
	}
	_, _ = svc.Disable(ctx, "acct_42", id) // refused as an unknown key until enabled
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	fmt.Println(key.Name, key.Permissions, errors.Is(err, apikey.ErrInvalidKey))
	_, _ = svc.Enable(ctx, "acct_42", id)

	page, _ := svc.Events(ctx, "acct_42", id, "", 10) // newest first; page.Next for more
	for _, e := range page.Items {
		fmt.Printf("%s by %q: %v\n", e.Type, e.Actor, slices.Sorted(maps.Keys(e.Changes)))
	}
	fmt.Printf("%s -> %s\n", page.Items[2].Changes["name"].Old, page.Items[2].Changes["name"].New)
	// Output:
	// deploy [read write] true
	// key.enabled by "alice@example.com": [disabled_at]
	// key.disabled by "alice@example.com": [disabled_at]
	// key.updated by "alice@example.com": [name permissions]
	// key.created by "": [created_at environment key_prefix name permissions]
	// "ci" -> "deploy"
}
