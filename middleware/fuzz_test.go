package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memstore"
)

// FuzzAuthenticate feeds arbitrary Authorization, X-API-Key and query
// values: the middleware never panics, answers only 200 or 401, and
// answers 200 only when the real key is presented. The seed corpus is in
// testdata/fuzz/FuzzAuthenticate.
func FuzzAuthenticate(f *testing.F) {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		f.Fatal(err)
	}
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct"})
	if err != nil {
		f.Fatal(err)
	}
	key := issued.Secret.Reveal()
	mw, err := middleware.New(middleware.Config{Verifier: svc})
	if err != nil {
		f.Fatal(err)
	}
	h := mw.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))

	f.Add("Bearer "+key, "", "")
	f.Add("", key, "")
	f.Add("bearer  "+key+" ", key, "")
	f.Add("Bearer", "", "api_key=x")
	f.Add("Basic Zm9vOmJhcg==", "", "")
	f.Fuzz(func(t *testing.T, authorization, apiKey, query string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = url.PathEscape(query)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		if apiKey != "" {
			r.Header.Set("X-API-Key", apiKey)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200:
			if !strings.Contains(authorization, key) && apiKey != key {
				t.Fatalf("200 without the key: %q %q", authorization, apiKey)
			}
		case 401:
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}
