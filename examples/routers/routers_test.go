package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/middleware"
)

func TestRouters(t *testing.T) {
	for name, build := range map[string]func(*middleware.Middleware) http.Handler{"chi": chiRouter, "gorilla/mux": gorillaRouter} {
		t.Run(name, func(t *testing.T) {
			mw, read, write, err := setup()
			if err != nil {
				t.Fatal(err)
			}
			h := build(mw)
			for _, c := range cases(read, write) {
				r := httptest.NewRequest("GET", c.path, nil)
				r.Header.Set("X-API-Key", c.key)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != c.want {
					t.Errorf("%s, %s %s: %d, want %d (%s)", name, c.who, c.path, w.Code, c.want, w.Body.String())
				}
			}
		})
	}
}

// The program runs: "go run ." from this folder.
func TestMainRuns(t *testing.T) { main() }
