// Command basic is the README's quickstart: an existing handler behind
// API-key authentication, permission guards and the free plan's rate
// limit, with one key issued at start and shown once.
//
//	go run ./examples/basic
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

func main() {
	// Your handler, unchanged; the caller's key is on the context.
	items := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context()) // p.Owner(), p.KeyID(), p.Has(apikey.Write), p.ProjectID()
		fmt.Fprintf(w, "items of %s\n", p.Owner())
	})

	svc, err := apikey.New(memstore.New(), apikey.Config{}) // keys: kg_live_ + 32 random + checksum
	if err != nil {
		log.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{
		Verifier: svc,
		Limiter:  ratelimit.NewMemory(ratelimit.MemoryConfig{}), // free plan: 10/min, 1,000/day per account
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /items", middleware.Chain(items, mw.RequireMethod())) // GET needs read
	mux.Handle("GET /projects/{id}/items", middleware.Chain(items, mw.RequireMethod(),
		mw.RequireProject(func(r *http.Request) string { return r.PathValue("id") })))

	// Issue a key for a customer. Its text exists only here: show it once.
	issued, err := svc.Create(context.Background(), apikey.CreateParams{
		Owner:       "acct_42",
		Permissions: []apikey.Permission{apikey.Read},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("curl -H 'Authorization: Bearer %s' localhost:8081/items\n", issued.Secret.Reveal())

	log.Fatal(http.ListenAndServe("localhost:8081", mw.Authenticate(mux)))
}
