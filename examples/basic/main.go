// Command basic is the smallest keygate integration: an existing handler
// wrapped with API-key authentication, in a few lines.
//
//	go run ./examples/basic
//
// It issues one demo key at start and prints it once, as a dashboard would.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memstore"
)

func main() {
	// Your existing handler, unchanged.
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello, %s\n", p.Owner())
	})

	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{Verifier: svc})
	if err != nil {
		log.Fatal(err)
	}

	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "demo", Permissions: []apikey.Permission{apikey.Read}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("curl -H 'Authorization: Bearer %s' localhost:8081/\n", issued.Secret.Reveal())

	log.Fatal(http.ListenAndServe("localhost:8081", mw.Authenticate(hello)))
}
