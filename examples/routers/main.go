// Command routers shows keygate with popular routers, chi and gorilla/mux:
// the middleware with each router's own way of adding middleware, and the
// permission and project guards on a route. It is a module of its own, so
// that the library's go.mod does not depend on any router; run it from
// this folder:
//
//	cd examples/routers && go run .
//
// It sends the same four requests through both routers and prints what
// each answered.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memstore"
)

func main() {
	for _, router := range []struct {
		name  string
		build func(*middleware.Middleware) http.Handler
	}{{"chi", chiRouter}, {"gorilla/mux", gorillaRouter}} {
		mw, read, write, err := setup()
		if err != nil {
			log.Fatal(err)
		}
		h := router.build(mw)
		for _, c := range cases(read, write) {
			r := httptest.NewRequest("GET", c.path, nil)
			r.Header.Set("X-API-Key", c.key)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			fmt.Printf("%-12s %-28s %-22s %d %s", router.name, c.who, c.path, w.Code, w.Body.String())
			if w.Body.Len() == 0 || w.Body.Bytes()[w.Body.Len()-1] != '\n' {
				fmt.Println()
			}
		}
	}
}

// setup returns a middleware and a read-only and a write-only key of
// project p1.
func setup() (*middleware.Middleware, string, string, error) {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		return nil, "", "", err
	}
	mw, err := middleware.New(middleware.Config{Verifier: svc})
	if err != nil {
		return nil, "", "", err
	}
	issue := func(perm apikey.Permission) (string, error) {
		k, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct", Permissions: []apikey.Permission{perm}, ProjectID: "p1"})
		return k.Secret.Reveal(), err
	}
	read, err := issue(apikey.Read)
	if err != nil {
		return nil, "", "", err
	}
	write, err := issue(apikey.Write)
	return mw, read, write, err
}

type request struct {
	who, key, path string
	want           int
}

func cases(read, write string) []request {
	return []request{
		{"read key, its project", read, "/projects/p1/items", 200},
		{"write key, its project", write, "/projects/p1/items", 403},
		{"read key, another project", read, "/projects/p2/items", 403},
		{"a malformed key", "kg_live_garbage", "/projects/p1/items", 401},
	}
}

func items(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	fmt.Fprintf(w, "items of %s\n", p.Owner())
}

// chiRouter: the middleware with chi's Use and With.
func chiRouter(mw *middleware.Middleware) http.Handler {
	r := chi.NewRouter()
	r.Use(mw.Authenticate)
	r.With(mw.RequireMethod(), mw.RequireProject(func(r *http.Request) string { return chi.URLParam(r, "project") })).
		Get("/projects/{project}/items", items)
	return r
}

// gorillaRouter: the same with gorilla/mux.
func gorillaRouter(mw *middleware.Middleware) http.Handler {
	r := mux.NewRouter()
	r.Use(mw.Authenticate)
	r.Handle("/projects/{project}/items", middleware.Chain(http.HandlerFunc(items),
		mw.RequireMethod(), mw.RequireProject(func(r *http.Request) string { return mux.Vars(r)["project"] }))).Methods("GET")
	return r
}
