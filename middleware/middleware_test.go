package middleware_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

type fixture struct {
	svc  *apikey.Service
	mw   *middleware.Middleware
	mux  *http.ServeMux
	h    http.Handler
	key  string
	hook *hooks
}

type hooks struct {
	mu       sync.Mutex
	failures []string
	limited  int
}

func setup(t *testing.T, cfg middleware.Config, params apikey.CreateParams) *fixture {
	t.Helper()
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: ratelimit.DefaultPlans()})
	require.NoError(t, err)
	if params.Owner == "" {
		params.Owner = "acct"
	}
	issued, err := svc.Create(context.Background(), params)
	require.NoError(t, err)
	f := &fixture{svc: svc, key: issued.Secret.Reveal(), mux: http.NewServeMux(), hook: &hooks{}}
	cfg.Verifier = svc
	cfg.OnAuthFailure = func(_ *http.Request, err error) {
		f.hook.mu.Lock()
		defer f.hook.mu.Unlock()
		f.hook.failures = append(f.hook.failures, err.Error())
	}
	cfg.OnRateLimited = func(*http.Request, apikey.Principal, *ratelimit.Decision) {
		f.hook.mu.Lock()
		defer f.hook.mu.Unlock()
		f.hook.limited++
	}
	f.mw, err = middleware.New(cfg)
	require.NoError(t, err)
	f.mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		p, ok := middleware.PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal on the context")
		}
		w.Header().Set("X-Owner", p.Owner())
		w.Header().Set("X-Seen-Key", r.Header.Get("X-API-Key")+r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
	})
	f.mux.Handle("POST /items", middleware.Chain(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}), f.mw.RequireMethod()))
	f.mux.Handle("GET /projects/{project}/items", middleware.Chain(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}),
		f.mw.Require(apikey.Read), f.mw.RequireProject(func(r *http.Request) string { return r.PathValue("project") })))
	f.h = f.mw.Authenticate(f.mux)
	return f
}

func (f *fixture) do(method, target string, header http.Header, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if header != nil {
		r.Header = header
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func TestKeyExtraction(t *testing.T) {
	f := setup(t, middleware.Config{}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	k := f.key
	tests := []struct {
		name   string
		header http.Header
		target string
		status int
	}{
		{"Authorization Bearer", http.Header{"Authorization": {"Bearer " + k}}, "/items", 200},
		{"lower-case bearer (schemes are case-insensitive)", http.Header{"Authorization": {"bearer " + k}}, "/items", 200},
		{"extra spaces", http.Header{"Authorization": {"  Bearer    " + k + "  "}}, "/items", 200},
		{"X-API-Key", http.Header{"X-Api-Key": {k}}, "/items", 200},
		{"both headers, same key", http.Header{"Authorization": {"Bearer " + k}, "X-Api-Key": {k}}, "/items", 200},
		{"no key", http.Header{}, "/items", 401},
		{"Bearer with no key", http.Header{"Authorization": {"Bearer"}}, "/items", 401},
		{"Bearer and a space", http.Header{"Authorization": {"Bearer "}}, "/items", 401},
		{"Basic", http.Header{"Authorization": {"Basic " + k}}, "/items", 401},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + k, "Bearer " + k}}, "/items", 401},
		{"two different keys", http.Header{"Authorization": {"Bearer " + k}, "X-Api-Key": {typo(k)}}, "/items", 401},
		{"1 MB header", http.Header{"X-Api-Key": {strings.Repeat("a", 1<<20)}}, "/items", 401},
		{"key with a space inside", http.Header{"Authorization": {"Bearer " + k[:10] + " " + k[10:]}}, "/items", 401},
		{"key in the query", http.Header{}, "/items?api_key=" + k, 401},
		{"key in the query beside a header", http.Header{"X-Api-Key": {k}}, "/items?x=1&access_token=" + k, 401},
		{"key in the query, percent-encoded name", http.Header{}, "/items?api%5Fkey=" + k, 401},
		{"key in the query, upper case", http.Header{}, "/items?API_KEY=" + k, 401},
		{"key in the query after a semicolon", http.Header{}, "/items?x=1;api_key=" + k, 401},
		{"a parameter that merely contains the name", http.Header{"X-Api-Key": {k}}, "/items?my_api_key_id=1", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do("GET", tc.target, tc.header, "")
			assert.Equal(t, tc.status, w.Code)
			if tc.status == 401 {
				if strings.Contains(tc.target, "?") {
					assert.Contains(t, w.Body.String(), "not accepted in the URL")
				}
				assert.Equal(t, `Bearer realm="api"`, w.Header().Get("WWW-Authenticate"))
				assert.NotContains(t, w.Body.String(), k[14:])
			}
		})
	}
	for _, failure := range f.hook.failures {
		assert.NotContains(t, failure, k[14:], "hooks never see the key")
	}
}

func TestQueryParamWhenEnabled(t *testing.T) {
	f := setup(t, middleware.Config{QueryParam: "api_key", HideKey: true}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	w := f.do("GET", "/items?api_key="+f.key, http.Header{}, "")
	assert.Equal(t, 200, w.Code)
	w = f.do("GET", "/items", http.Header{"X-Api-Key": {f.key}}, "")
	assert.Equal(t, 200, w.Code)
	assert.Empty(t, w.Header().Get("X-Seen-Key"), "HideKey removes the key headers")
}

func TestGuards(t *testing.T) {
	f := setup(t, middleware.Config{}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}, ProjectID: "p1"})
	h := http.Header{"X-Api-Key": {f.key}}
	w := f.do("POST", "/items", h, "")
	assert.Equal(t, 403, w.Code)
	assert.JSONEq(t, `{"error":"Write permission required"}`, w.Body.String())
	assert.Equal(t, 200, f.do("GET", "/projects/p1/items", h, "").Code)
	w = f.do("GET", "/projects/p2/items", h, "")
	assert.Equal(t, 403, w.Code)
	assert.JSONEq(t, `{"error":"API key is not valid for this project"}`, w.Body.String())

	// A guard without Authenticate refuses rather than letting through.
	unguarded := httptest.NewRecorder()
	f.mw.Require(apikey.Read)(http.NotFoundHandler()).ServeHTTP(unguarded, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, 401, unguarded.Code)
}

func TestRestrictions(t *testing.T) {
	ips := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	f := setup(t, middleware.Config{TrustedProxies: []netip.Prefix{proxy}}, apikey.CreateParams{
		Permissions: []apikey.Permission{apikey.Read},
		Restrictions: apikey.Restrictions{
			AllowedIPs: ips, AllowedReferrers: []string{"app.example.com"}, AllowedEndpoints: []string{"GET /items"},
		},
	})
	ok := func() http.Header {
		return http.Header{"X-Api-Key": {f.key}, "Referer": {"https://app.example.com/page"}}
	}
	assert.Equal(t, 200, f.do("GET", "/items", ok(), "203.0.113.9:5000").Code)

	w := f.do("GET", "/items", ok(), "198.51.100.1:5000")
	assert.Equal(t, 403, w.Code)
	assert.Contains(t, w.Body.String(), "IP address")

	spoofed := ok()
	spoofed.Set("X-Forwarded-For", "203.0.113.9")
	assert.Equal(t, 403, f.do("GET", "/items", spoofed, "198.51.100.1:5000").Code, "X-Forwarded-For from an untrusted peer is ignored")
	assert.Equal(t, 200, f.do("GET", "/items", spoofed, "10.1.2.3:5000").Code, "through a trusted proxy it counts")
	chain := ok()
	chain.Set("X-Forwarded-For", "203.0.113.9, 198.51.100.7")
	assert.Equal(t, 403, f.do("GET", "/items", chain, "10.1.2.3:5000").Code, "the rightmost untrusted hop is the client")

	noRef := ok()
	noRef.Del("Referer")
	w = f.do("GET", "/items", noRef, "203.0.113.9:5000")
	assert.Equal(t, 403, w.Code)
	assert.Contains(t, w.Body.String(), "referrer")

	w = f.do("POST", "/items", ok(), "203.0.113.9:5000")
	assert.Equal(t, 403, w.Code)
	assert.Contains(t, w.Body.String(), "endpoint")
}

// The browser guard: a secret key sent by a web page is refused; a key
// that lists the page's host works from that page only; a request no
// page made (a server, curl, a typed address) is never affected.
func TestBrowserGuard(t *testing.T) {
	secret := setup(t, middleware.Config{}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	forPage := setup(t, middleware.Config{}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read},
		Restrictions: apikey.Restrictions{AllowedReferrers: []string{"app.example.com"}}})
	open := setup(t, middleware.Config{AllowBrowsers: true}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	for _, c := range []struct {
		name   string
		f      *fixture
		header http.Header
		want   int
	}{
		{"a server", secret, http.Header{}, 200},
		{"a typed address", secret, http.Header{"Sec-Fetch-Site": {"none"}, "Sec-Fetch-Mode": {"navigate"}}, 200},
		{"a page elsewhere", secret, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, 403},
		{"a page of the same origin", secret, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Referer": {"https://api.example.com/docs"}}, 403},
		{"an opaque origin", secret, http.Header{"Origin": {"null"}}, 403},
		{"its page", forPage, http.Header{"Origin": {"https://app.example.com"}, "Sec-Fetch-Site": {"cross-site"}}, 200},
		{"its page, by referrer", forPage, http.Header{"Sec-Fetch-Site": {"same-site"}, "Referer": {"https://app.example.com/x"}}, 200},
		{"another page", forPage, http.Header{"Origin": {"https://evil.example"}, "Referer": {"https://app.example.com/"}}, 403},
		{"any page, guard off", open, http.Header{"Origin": {"https://evil.example"}}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.header.Set("X-Api-Key", c.f.key)
			w := c.f.do("GET", "/items", c.header, "")
			assert.Equal(t, c.want, w.Code, w.Body.String())
			if c.want == 403 {
				assert.Contains(t, w.Body.String(), "web page")
			}
		})
	}

	// A CORS preflight carries no key: it reaches the host's CORS
	// handler, with no principal, instead of a 401.
	f := setup(t, middleware.Config{}, apikey.CreateParams{})
	f.mux.HandleFunc("OPTIONS /items", func(w http.ResponseWriter, r *http.Request) {
		_, ok := middleware.PrincipalFrom(r.Context())
		assert.False(t, ok)
		w.Header().Set("Access-Control-Allow-Origin", "https://app.example.com")
		w.WriteHeader(http.StatusNoContent)
	})
	w := f.do("OPTIONS", "/items", http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"GET"}}, "")
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, "https://app.example.com", w.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, 401, f.do("OPTIONS", "/items", http.Header{}, "").Code, "an OPTIONS that is no preflight needs a key")
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: func() time.Time { return now }, SweepInterval: -1})
	f := setup(t, middleware.Config{Limiter: lim, IETF: ratelimit.IETFDraft10}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}, Plan: "free"})
	h := http.Header{"X-Api-Key": {f.key}}
	for i := range 10 {
		w := f.do("GET", "/items", h, "")
		require.Equal(t, 200, w.Code, i)
		assert.Equal(t, "10", w.Header().Get("X-RateLimit-Limit"))
		assert.NotEmpty(t, w.Header().Get("RateLimit-Policy"))
	}
	w := f.do("GET", "/items", h, "")
	assert.Equal(t, 429, w.Code)
	assert.Equal(t, "6", w.Header().Get("Retry-After"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, map[string]any{"error": "Rate limit exceeded", "retry_after": 6.0}, body)
	assert.Equal(t, 1, f.hook.limited)
}

// failingLimiter and failingVerifier stand for a Redis that is down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, ratelimit.Request) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errors.New("redis: connection refused")
}

type failingVerifier struct{}

func (failingVerifier) Verify(context.Context, string) (apikey.Principal, error) {
	return apikey.Principal{}, errors.New("redis: i/o timeout at 10.0.0.5:6379")
}

func (failingVerifier) Plans() *ratelimit.Plans { return nil }

func TestFailuresAre503WithoutDetails(t *testing.T) {
	f := setup(t, middleware.Config{Limiter: failingLimiter{}}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	w := f.do("GET", "/items", http.Header{"X-Api-Key": {f.key}}, "")
	assert.Equal(t, 503, w.Code)
	assert.NotContains(t, w.Body.String(), "redis")

	mw, err := middleware.New(middleware.Config{Verifier: failingVerifier{}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-API-Key", f.key)
	mw.Authenticate(http.NotFoundHandler()).ServeHTTP(rec, req)
	assert.Equal(t, 503, rec.Code)
	assert.JSONEq(t, `{"error":"Service temporarily unavailable"}`, rec.Body.String())
}

func TestErrorPresets(t *testing.T) {
	e := &middleware.Error{Status: 429, Code: middleware.CodeRateLimited, Message: "Rate limit exceeded", RetryAfter: 7}
	tests := []struct {
		name   string
		writer middleware.ErrorWriter
		ctype  string
		body   string
	}{
		{"default", middleware.DefaultErrors, "application/json", `{"error":"Rate limit exceeded","retry_after":7}`},
		{"detail (seed 001)", middleware.DetailErrors, "application/json", `{"detail":"Rate limit exceeded","retry_after":7}`},
		{"code (seed 002)", middleware.CodeErrors, "application/json", `{"error":{"code":"rate_limited","message":"Rate limit exceeded","retry_after":7}}`},
		{"RFC 9457", middleware.ProblemErrors, "application/problem+json",
			`{"type":"/problems/rate_limited","title":"Too Many Requests","status":429,"detail":"Rate limit exceeded","retry_after":7}`},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		tc.writer(w, httptest.NewRequest("GET", "/", nil), e)
		assert.Equal(t, 429, w.Code, tc.name)
		assert.Equal(t, tc.ctype, w.Header().Get("Content-Type"), tc.name)
		assert.Equal(t, "7", w.Header().Get("Retry-After"), tc.name)
		assert.JSONEq(t, tc.body, w.Body.String(), tc.name)
	}
	w := httptest.NewRecorder()
	middleware.CodeErrors(w, httptest.NewRequest("GET", "/", nil), &middleware.Error{Status: 401, Code: middleware.CodeInvalidKey, Message: "Invalid or missing API key"})
	assert.JSONEq(t, `{"error":{"code":"unauthorized","message":"Invalid or missing API key"}}`, w.Body.String())
}

// The plans are the key service's: a plan of its own, unknown to the
// default plans, limits its accounts by its own policy.
func TestPlansAreTheServices(t *testing.T) {
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	t.Cleanup(func() { _ = limiter.Close() })
	plans, err := ratelimit.NewPlans(mustPolicy("enterprise", ratelimit.PerMinute(2)))
	require.NoError(t, err)
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: plans})
	require.NoError(t, err)
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct", Permissions: []apikey.Permission{apikey.Read}})
	require.NoError(t, err)
	mw, err := middleware.New(middleware.Config{Verifier: svc, Limiter: limiter})
	require.NoError(t, err)
	h := mw.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-API-Key", issued.Secret.Reveal())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, "2", w.Header().Get("X-RateLimit-Limit"), "the enterprise plan's 2 a minute")
}

func TestNewRequiresVerifier(t *testing.T) {
	_, err := middleware.New(middleware.Config{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
	assert.Equal(t, apikey.Delete, middleware.MethodPermission("DELETE"))
	assert.Equal(t, apikey.Read, middleware.MethodPermission("HEAD"))
	assert.Equal(t, apikey.Write, middleware.MethodPermission("PUT"))
}

// recorderUsage collects recorded usage.
type recorderUsage struct {
	mu   sync.Mutex
	seen []string
}

func (u *recorderUsage) Record(_, endpoint string, status int, _ time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = append(u.seen, endpoint+" "+strconv.Itoa(status))
}

func TestUsageRecordsPatternAndStatusAndKeepsFlusher(t *testing.T) {
	usage := &recorderUsage{}
	f := setup(t, middleware.Config{Usage: usage}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	f.mux.HandleFunc("GET /stream/{id}", func(w http.ResponseWriter, _ *http.Request) {
		flusher, ok := w.(http.Flusher)
		if !ok {
			t.Error("the usage writer hides http.Flusher")
			return
		}
		_, _ = w.Write([]byte("data: 1\n\n"))
		flusher.Flush()
	})
	h := http.Header{"X-Api-Key": {f.key}}
	f.do("GET", "/stream/42", h, "")
	f.do("POST", "/items", h, "") // 403 from the guard, still usage
	f.do("GET", "/nowhere", h, "")
	f.do("FOO", "/nowhere", h, "") // any method: one bucket
	f.mux.HandleFunc("/any", func(http.ResponseWriter, *http.Request) {})
	f.do("BAR", "/any", h, "")
	f.do("PUT", "/any", h, "")
	assert.Equal(t, []string{"GET /stream/{id} 200", "POST /items 403", "unmatched 404", "unmatched 404", "OTHER /any 200", "PUT /any 200"}, usage.seen)
}

// countingLimiter counts the tokens asked of the limiter it wraps.
type countingLimiter struct {
	ratelimit.Limiter
	calls int
}

func (c *countingLimiter) Allow(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	c.calls++
	return c.Limiter.Allow(ctx, r)
}

// A request that matches no route gets JSON, through the error writer,
// and takes no rate-limit token.
func TestUnknownRouteIsJSONAndFree(t *testing.T) {
	mem := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	t.Cleanup(func() { _ = mem.Close() })
	limiter := &countingLimiter{Limiter: mem}
	f := setup(t, middleware.Config{Limiter: limiter}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	h := http.Header{"X-Api-Key": {f.key}}

	w := f.do("GET", "/nowhere", h, "")
	assert.Equal(t, 404, w.Code)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"error":"Not found"}`, w.Body.String())
	assert.Empty(t, w.Header().Get("X-Ratelimit-Remaining"))

	w = f.do("DELETE", "/items", h, "")
	assert.Equal(t, 405, w.Code)
	assert.Equal(t, "GET, HEAD, POST", w.Header().Get("Allow"))
	assert.JSONEq(t, `{"error":"Method not allowed"}`, w.Body.String())
	assert.Zero(t, limiter.calls, "no token for a request no route serves")

	w = f.do("GET", "/nowhere", http.Header{"X-Api-Key": {typo(f.key)}}, "")
	assert.Equal(t, 401, w.Code, "an unknown route says nothing to a caller without a valid key")

	assert.Equal(t, 200, f.do("GET", "/items", h, "").Code)
	assert.Equal(t, 1, limiter.calls)
}

// Endpoint restrictions name route patterns; the ServeMux that
// Authenticate wraps resolves them without Config.Routes.
func TestEndpointRestrictionsMatchPatterns(t *testing.T) {
	f := setup(t, middleware.Config{}, apikey.CreateParams{
		Permissions:  []apikey.Permission{apikey.Read},
		Restrictions: apikey.Restrictions{AllowedEndpoints: []string{"GET /projects/{project}/items"}},
	})
	h := http.Header{"X-Api-Key": {f.key}}
	assert.Equal(t, 200, f.do("GET", "/projects/p1/items", h, "").Code)
	w := f.do("GET", "/items", h, "")
	assert.Equal(t, 403, w.Code)
	assert.JSONEq(t, `{"error":"API key is not allowed for this endpoint"}`, w.Body.String())
}

// typo changes the last character of key, always to a different one.
func typo(key string) string {
	if strings.HasSuffix(key, "x") {
		return key[:len(key)-1] + "y"
	}
	return key[:len(key)-1] + "x"
}

func TestNewKeepsCallersHeaders(t *testing.T) {
	headers := []string{"x-api-key"}
	_, err := middleware.New(middleware.Config{Verifier: failingVerifier{}, KeyHeaders: headers})
	require.NoError(t, err)
	assert.Equal(t, []string{"x-api-key"}, headers)
}

// Recording usage costs one allocation per request (the status writer),
// none for the endpoint name.
func TestUsageRecordingAllocations(t *testing.T) {
	measure := func(cfg middleware.Config) float64 {
		f := setup(t, cfg, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
		r := httptest.NewRequest("GET", "/items", nil)
		r.Header.Set("X-API-Key", f.key)
		w := &discard{h: http.Header{}}
		return testing.AllocsPerRun(200, func() { f.h.ServeHTTP(w, r) })
	}
	without := measure(middleware.Config{})
	with := measure(middleware.Config{Usage: &countingUsage{}})
	assert.LessOrEqual(t, with-without, 1.0)
}

type countingUsage struct{ n int }

func (u *countingUsage) Record(string, string, int, time.Time) { u.n++ }

// The principal's context node passes the caller's values, deadline and
// cancellation through, and the request the handler sees is a copy.
func TestContextCarriesThrough(t *testing.T) {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct"})
	require.NoError(t, err)
	mw, err := middleware.New(middleware.Config{Verifier: svc})
	require.NoError(t, err)
	type traceKey struct{}
	ctx, cancelParent := context.WithTimeout(context.WithValue(context.Background(), traceKey{}, "trace-1"), time.Minute)
	defer cancelParent()
	var seen *http.Request
	h := mw.Authenticate(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = r
		p, ok := middleware.PrincipalFrom(r.Context())
		assert.True(t, ok)
		assert.Equal(t, "acct", p.Owner())
		assert.Equal(t, "trace-1", r.Context().Value(traceKey{}))
		_, hasDeadline := r.Context().Deadline()
		assert.True(t, hasDeadline)
		child, cancelChild := context.WithCancel(r.Context())
		defer cancelChild()
		cancelParent()
		<-child.Done() // the parent's cancellation reaches contexts derived from the node
		assert.ErrorIs(t, r.Context().Err(), context.Canceled)
	}))
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+issued.Secret.Reveal())
	h.ServeHTTP(httptest.NewRecorder(), r)
	require.NotNil(t, seen)
	assert.NotSame(t, r, seen)
	_, ok := middleware.PrincipalFrom(r.Context())
	assert.False(t, ok, "the caller's request is left as it was")
}

// A refused request whose body never arrives is answered at once, and the
// connection closed, instead of waiting for the body.
func TestRefusalDoesNotWaitForTheBody(t *testing.T) {
	f := setup(t, middleware.Config{}, apikey.CreateParams{Permissions: []apikey.Permission{apikey.Read}})
	srv := httptest.NewUnstartedServer(f.h)
	srv.Config.ReadTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	for name, auth := range map[string]string{"no key": "", "unknown key": "Authorization: Bearer " + typo(f.key) + "\r\n"} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		start := time.Now()
		_, err = c.Write([]byte("POST /items HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 100000\r\n\r\n{"))
		require.NoError(t, err)
		// The server has no read timeout: had it waited for the body, the
		// client's deadline, a hang guard, would end the read instead.
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, name)
		assert.Equal(t, 401, resp.StatusCode, name)
		assert.True(t, resp.Close, "%s: the server closes the connection", name)
		_, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		_, err = c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "%s: closed without waiting for the body either", name)
		t.Logf("%s: answered and closed after %v", name, time.Since(start))
		_ = c.Close()
	}
}

// mustPolicy returns the policy of windows, which are valid.
func mustPolicy(name string, windows ...ratelimit.Window) *ratelimit.Policy {
	p, err := ratelimit.NewPolicy(name, windows...)
	if err != nil {
		panic(err)
	}
	return p
}
