package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

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

// Limits are the account's: its plan, an Enterprise contract's custom
// limits, and a credit balance that each request spends.
func Example_accounts() {
	ctx := context.Background()
	svc, _ := apikey.New(memstore.New(), apikey.Config{Plans: ratelimit.DefaultPlans()})
	mw, _ := middleware.New(middleware.Config{
		Verifier: svc,
		Limiter:  ratelimit.NewMemory(ratelimit.MemoryConfig{}),
		Costs:    map[string]int64{"POST /reports": 10}, // other routes cost 1
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reports", func(http.ResponseWriter, *http.Request) {})
	handler := mw.Authenticate(mux)
	key, _ := svc.Create(ctx, apikey.CreateParams{Owner: "acct_42", Permissions: []apikey.Permission{apikey.Write}})

	// The plan is the account's; all its keys share it.
	acct := apikey.Account{ID: "acct_42", Plan: "business"}
	_ = svc.SetAccount(ctx, acct)
	// An Enterprise contract: custom windows in place of the plan's, here
	// 5,000 a minute and 50 million a calendar month (UTC).
	acct.Limits = []ratelimit.Window{{Limit: 5_000, Period: time.Minute}, {Limit: 50_000_000, Monthly: true}}
	_ = svc.SetAccount(ctx, acct)
	// A balance of 25 credits, refilled to 1,000 on the first of each month.
	acct.Credits = &ratelimit.Credits{Balance: 25, Refill: 1_000, Monthly: true}
	err := svc.SetAccount(ctx, acct)
	fmt.Println("set:", err)

	for range 3 {
		r := httptest.NewRequest("POST", "/reports", nil)
		r.Header.Set("X-API-Key", key.Secret.Reveal())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("X-RateLimit-Remaining"), strings.Contains(w.Body.String(), "Quota exceeded"))
	}
	// Output:
	// set: <nil>
	// 200 15 false
	// 200 5 false
	// 429 5 true
}
