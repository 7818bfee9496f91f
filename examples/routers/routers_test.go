// Package routers shows keygate with popular routers. It is its own module
// so that the library's go.mod does not depend on them; run its tests from
// this directory (CI does).
package routers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memstore"
)

// setup returns a middleware and a read-only and a write-only key.
func setup(t *testing.T) (*middleware.Middleware, string, string) {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := middleware.New(middleware.Config{Verifier: svc})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(perm apikey.Permission) string {
		k, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct", Permissions: []apikey.Permission{perm}, ProjectID: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		return k.Secret.Reveal()
	}
	return mw, issue(apikey.Read), issue(apikey.Write)
}

func items(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	fmt.Fprintf(w, "items of %s", p.Owner())
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

func TestRouters(t *testing.T) {
	for name, build := range map[string]func(*middleware.Middleware) http.Handler{"chi": chiRouter, "gorilla/mux": gorillaRouter} {
		t.Run(name, func(t *testing.T) {
			mw, read, write := setup(t)
			h := build(mw)
			for _, tc := range []struct {
				key, path string
				want      int
			}{
				{read, "/projects/p1/items", 200},
				{write, "/projects/p1/items", 403},
				{read, "/projects/p2/items", 403},
				{"kg_live_garbage", "/projects/p1/items", 401},
			} {
				r := httptest.NewRequest("GET", tc.path, nil)
				r.Header.Set("X-API-Key", tc.key)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != tc.want {
					t.Errorf("%s %s: %d, want %d (%s)", name, tc.path, w.Code, tc.want, w.Body.String())
				}
			}
		})
	}
}
