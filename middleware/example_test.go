package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

// Wrap an existing router: Authenticate outside, permission guards on the
// routes inside.
func Example() {
	svc, _ := apikey.New(memstore.New(), apikey.Config{})
	mux := http.NewServeMux()
	mw, _ := middleware.New(middleware.Config{
		Verifier: svc,
		Limiter:  ratelimit.NewMemory(ratelimit.MemoryConfig{}), // free plan: 10/min + 1,000/day per account
		Routes:   mux,
	})
	mux.Handle("GET /items", middleware.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "items of %s", p.Owner())
	}), mw.RequireMethod()))
	handler := mw.Authenticate(mux)

	readKey, _ := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct_42", Permissions: []apikey.Permission{apikey.Read}})
	writeKey, _ := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct_42", Permissions: []apikey.Permission{apikey.Write}})

	for _, key := range []string{readKey.Secret.Reveal(), writeKey.Secret.Reveal(), "kg_live_nope"} {
		r := httptest.NewRequest("GET", "/items", nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("X-RateLimit-Remaining"), w.Body.String())
	}
	// Output:
	// 200 9 items of acct_42
	// 403 8 {"error":"Read permission required"}
	//
	// 401  {"error":"Invalid or expired API key"}
}
