package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event/notice"
	"github.com/keygate/keygate/internal/headers"
	"github.com/keygate/keygate/ratelimit"
	"go.opentelemetry.io/otel/metric"
)

// Verifier turns a presented key into its principal; [*apikey.Service]
// implements it. Errors matching apikey.ErrMalformed, ErrInvalidKey,
// ErrExpired or ErrNotYetValid are answered 401, any other error 503.
type Verifier interface {
	Verify(ctx context.Context, key string) (apikey.Principal, error)
	// Plans returns the plans that accounts and keys name, which the
	// Limiter enforces; nil for [ratelimit.DefaultPlans].
	Plans() *ratelimit.Plans
}

// UsageRecorder counts a request made with a valid key; a
// [*usage.Recorder] implements it. Record must be cheap and must not
// block.
type UsageRecorder interface {
	Record(keyID, endpoint string, status int, at time.Time)
}

// Router resolves a request's route pattern before it is served;
// [*http.ServeMux] implements it. Handler returns the pattern "" when no
// route matches, with the handler that would answer that (a 404 or 405).
type Router interface {
	Handler(r *http.Request) (h http.Handler, pattern string)
}

// Config configures a [Middleware]. Only Verifier is required; the zero
// value of every other field selects the default it names.
type Config struct {
	// Verifier checks keys, usually an *apikey.Service.
	Verifier Verifier
	// KeyHeaders are the headers a key is read from, in order. For
	// "Authorization" the value must be "Bearer <key>" (the scheme is
	// case-insensitive, RFC 9110); other headers carry the bare key.
	// Default "Authorization" and "X-API-Key". A request that carries a
	// header twice, or different keys in two headers, is refused.
	KeyHeaders []string
	// QueryParam, when set, also accepts the key from this query
	// parameter. Keys in URLs end up in logs and browser history, so by
	// default a request with api_key, apikey or access_token in its query
	// is refused.
	QueryParam string
	// HideKey removes the key headers before the request reaches the next
	// handler.
	HideKey bool
	// Limiter, when set, rate-limits each request under its account's
	// plan (or the account's custom limits), shared by all the account's
	// keys, under the key's own plan when it has one, as a cap within the
	// account's, and against the account's credit balance when it has one
	// (refused with "Quota exceeded"); it writes X-RateLimit-* headers of
	// the binding limit on every response it lets through. The plans are
	// the Verifier's (an *apikey.Service's Config.Plans).
	Limiter ratelimit.Limiter
	// Costs are what a request to a route takes from every window, by
	// route pattern ("POST /reports"). Default 1; 0 verifies the key and
	// takes nothing. New refuses a negative cost and one above a plan's
	// smallest window.
	Costs map[string]int64
	// IETF also writes the IETF RateLimit fields of that draft version.
	IETF ratelimit.IETFVersion
	// Usage, when set, records every request made with a valid key, with
	// its route pattern and final status.
	Usage UsageRecorder
	// Routes resolves a request's route pattern before it is served, so
	// that endpoint restrictions compare route patterns, usage counts
	// every request under its route, and a request that matches no route
	// is answered 404 (or 405) through Errors without taking a rate-limit
	// token. Default: the handler Authenticate wraps, when it is a Router
	// (an *http.ServeMux is). With neither, endpoint restrictions compare
	// the raw path, which never matches a pattern with a wildcard: a key
	// restricted to "GET /items/{id}" is then refused everywhere.
	Routes Router
	// AllowBrowsers turns the browser guard off. With the guard on (the
	// default), a request a web page made (one with an Origin header, or
	// Sec-Fetch-Site other than "none") is refused with 403 unless its
	// key lists the page's host in its allowed referrers: keys are
	// secrets, and a key in a page's JavaScript is every visitor's.
	// Turned off, any page can use any key it holds, and a key leaked
	// into a web page works from every copy of it.
	AllowBrowsers bool
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed. Default none: the client address is
	// RemoteAddr. Never list networks clients can send from.
	TrustedProxies []netip.Prefix
	// Errors writes refusals. Default [DefaultErrors].
	Errors ErrorWriter
	// OnAuthFailure is called for every 401 and 503 with the reason; it
	// never receives the key.
	OnAuthFailure func(r *http.Request, err error)
	// OnRateLimited is called for every 429.
	OnRateLimited func(r *http.Request, p apikey.Principal, d *ratelimit.Decision)
	// Notices, when set, hears of the decisions that leave the binding
	// window or the credit balance past its first threshold (80% spent
	// by default), to record limit.threshold, credits.low and
	// credits.exhausted events (see notice.Limits; run it). The request
	// hands it a value and never waits; below the threshold it costs one
	// comparison.
	Notices *notice.Limits
	// Clock returns the time recorded with usage. Default [time.Now].
	Clock func() time.Time
	// MeterProvider, when set, receives the middleware's metrics through
	// the OpenTelemetry metric API (the application picks the SDK and
	// the exporter): the counters keygate.verifications, by outcome (ok,
	// invalid, error), and keygate.ratelimit.decisions, by outcome
	// (allowed, rate_limited, quota_exceeded, failed_open, error) and the
	// account's plan; and the histograms keygate.verification.duration
	// and keygate.ratelimit.duration, in seconds, by the same, measured
	// on one request in 64. No attribute ever holds a key, a key ID or an
	// account. Default none: no metrics, and no cost.
	MeterProvider metric.MeterProvider
}

// Middleware authenticates API keys on net/http. Create one with [New];
// it is safe for concurrent use.
type Middleware struct {
	cfg   Config
	plans *ratelimit.Plans // the Verifier's, or the default ones
	// metrics, nil without a MeterProvider: every recording is behind a
	// nil check, so that none costs a request anything then.
	metrics *metrics
	custom  sync.Map // account ID -> *customTerms, for accounts with custom limits
	keys    sync.Map // key lineage -> *keyTerms, for keys with custom limits
}

// New validates cfg and returns its Middleware.
func New(cfg Config) (*Middleware, error) {
	if cfg.Verifier == nil {
		return nil, fmt.Errorf("middleware: %w: Config.Verifier is required", apikey.ErrInvalidConfig)
	}
	names := cfg.KeyHeaders
	if len(names) == 0 {
		names = []string{"Authorization", "X-API-Key"}
	}
	// A canonical copy: the caller's slice stays as it was.
	cfg.KeyHeaders = make([]string, len(names))
	for i, h := range names {
		cfg.KeyHeaders[i] = http.CanonicalHeaderKey(h)
	}
	plans := cfg.Verifier.Plans()
	if plans == nil {
		plans = ratelimit.DefaultPlans()
	}
	if err := checkCosts(cfg, plans); err != nil {
		return nil, err
	}
	var mt *metrics
	if cfg.MeterProvider != nil {
		var err error
		if mt, err = newMetrics(cfg.MeterProvider, plans); err != nil {
			return nil, fmt.Errorf("middleware: metrics: %w", err)
		}
	}
	if cfg.Errors == nil {
		cfg.Errors = DefaultErrors
	}
	if cfg.OnAuthFailure == nil {
		cfg.OnAuthFailure = func(*http.Request, error) {}
	}
	if cfg.OnRateLimited == nil {
		cfg.OnRateLimited = func(*http.Request, apikey.Principal, *ratelimit.Decision) {}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Middleware{cfg: cfg, plans: plans, metrics: mt}, nil
}

type principalKey struct{}

// principalContext carries a request's principal. It is context.WithValue
// made for one key: half the size, with nothing to box or check.
type principalContext struct {
	context.Context
	p apikey.Principal
}

func (c *principalContext) Value(key any) any {
	if key == (principalKey{}) {
		return &c.p // a pointer, which boxing leaves where it is
	}
	return c.Context.Value(key)
}

// authenticated is what a verified request needs per request, allocated
// together: the request copy, the context node that carries its principal
// and the rate-limit header values.
type authenticated struct {
	req     http.Request
	ctx     principalContext
	headers headers.Values
}

// authenticate returns the per-request state of r made by p, its request
// a shallow copy of r whose context carries p. It takes one allocation
// where r.WithContext(ctx), the node and SetHeaders would take three: the
// copy WithContext makes does not escape, so it stays on the stack.
func authenticate(r *http.Request, p apikey.Principal) *authenticated {
	a := &authenticated{ctx: principalContext{Context: r.Context(), p: p}}
	a.req = *r.WithContext(&a.ctx)
	return a
}

// PrincipalFrom returns the principal Authenticate put on ctx.
func PrincipalFrom(ctx context.Context) (apikey.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*apikey.Principal)
	if !ok {
		return apikey.Principal{}, false
	}
	return *p, true
}

// Reasons a request is refused before its key is checked. They never
// contain the key.
var (
	errNoKey            = errors.New("middleware: no API key")
	errAmbiguousKey     = errors.New("middleware: more than one API key")
	errNotBearer        = errors.New("middleware: Authorization is not a Bearer credential")
	errKeyInQuery       = errors.New("middleware: API key in the query string")
	errLimiterDown      = errors.New("middleware: rate limiter unavailable")
	msgInvalid          = "Invalid or expired API key"
	msgQuery            = "API keys are not accepted in the URL; send the Authorization or X-API-Key header"
	msgUnavailable      = "Service temporarily unavailable"
	msgRateLimited      = "Rate limit exceeded"
	msgQuotaExceeded    = "Quota exceeded"
	msgWrongProject     = "API key is not valid for this project"
	msgIP               = "API key is not allowed from this IP address"
	msgReferrer         = "API key is not allowed from this referrer"
	msgEndpoint         = "API key is not allowed for this endpoint"
	msgBrowser          = "API key is not allowed from a web page; call the API from your server, or list this page's host in the key's allowed referrers"
	msgNotFound         = "Not found"
	msgMethodNotAllowed = "Method not allowed"
	queryKeyNames       = []string{"api_key", "apikey", "access_token"}
)

// extract finds the request's key. A request with no key gets errNoKey.
func (m *Middleware) extract(r *http.Request) (string, error) {
	var key string
	for _, name := range m.cfg.KeyHeaders {
		vals := r.Header[name]
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			return "", errAmbiguousKey
		}
		v := vals[0]
		if name == "Authorization" {
			var ok bool
			if v, ok = Bearer(v); !ok {
				return "", errNotBearer
			}
		} else {
			v = strings.TrimSpace(v)
		}
		if key != "" && key != v {
			return "", errAmbiguousKey
		}
		key = v
	}
	if q := r.URL.RawQuery; q != "" {
		if m.cfg.QueryParam != "" {
			if v := r.URL.Query().Get(m.cfg.QueryParam); v != "" {
				if key != "" && key != v {
					return "", errAmbiguousKey
				}
				key = v
			}
		} else if keyInQuery(q) {
			return "", errKeyInQuery
		}
	}
	if key == "" {
		return "", errNoKey
	}
	return key, nil
}

// keyInQuery reports whether query q has a parameter that usually carries
// an API key (api_key, apikey, access_token), in any case or
// percent-encoding, separated by "&" or ";".
func keyInQuery(q string) bool {
	for q != "" {
		var param string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			param, q = q[:i], q[i+1:]
		} else {
			param, q = q, ""
		}
		name, _, _ := strings.Cut(param, "=")
		if strings.ContainsAny(name, "%+") {
			if unescaped, err := url.QueryUnescape(name); err == nil {
				name = unescaped
			}
		}
		for _, k := range queryKeyNames {
			if strings.EqualFold(strings.TrimSpace(name), k) {
				return true
			}
		}
	}
	return false
}

// Bearer returns the credential of an Authorization header value,
// "Bearer <token>" with the scheme in any case (RFC 9110) and any spaces
// around the token. It reports false for another scheme or no token.
func Bearer(v string) (string, bool) {
	// The usual form needs no trimming or case folding: nothing to trim
	// starts at byte 7 or ends at the last byte.
	if len(v) > 7 && v[:7] == "Bearer " && v[7] > ' ' && v[len(v)-1] > ' ' && v[len(v)-1] < utf8.RuneSelf {
		return v[7:], true
	}
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	rest = strings.TrimLeft(rest, " ")
	return rest, rest != ""
}

func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	m.refuse(w, r, &Error{Status: status, Code: code, Message: msg})
}

// refuse writes a refusal. A refused request's body is never read, so the
// connection is closed after the response, and at once: otherwise
// net/http would wait for the body to arrive, before answering and again
// before closing, and a client that never sends it would hold the
// connection until the server's read timeout.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	m.cfg.Errors(w, r, e)
}

// Authenticate verifies the request's key, applies the browser guard
// ([Config].AllowBrowsers), its IP, referrer and endpoint restrictions
// and its rate limit, puts its principal on the context ([PrincipalFrom])
// and calls next. Wrap the whole router with it; put permission and
// project guards on routes inside the router.
//
// A CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method), which by the Fetch standard never
// carries a key, is passed to next as it is, with no principal, for the
// host's CORS handler to answer: next must answer such a request with
// CORS headers alone.
func (m *Middleware) Authenticate(next http.Handler) http.Handler {
	routes := m.cfg.Routes
	if routes == nil {
		routes, _ = next.(Router)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" && r.Header.Get("Origin") != "" {
			next.ServeHTTP(w, r)
			return
		}
		var d draw
		if m.metrics != nil {
			d = m.metrics.draw()
		}
		key, err := m.extract(r)
		if err != nil {
			if m.metrics != nil {
				m.metrics.verified(r.Context(), verifyInvalid, &d)
			}
			m.cfg.OnAuthFailure(r, err)
			msg := msgInvalid
			if errors.Is(err, errKeyInQuery) {
				msg = msgQuery
			}
			m.fail(w, r, http.StatusUnauthorized, CodeInvalidKey, msg)
			return
		}
		p, err := m.cfg.Verifier.Verify(r.Context(), key)
		if err != nil {
			m.cfg.OnAuthFailure(r, err)
			if errors.Is(err, apikey.ErrMalformed) || errors.Is(err, apikey.ErrInvalidKey) ||
				errors.Is(err, apikey.ErrExpired) || errors.Is(err, apikey.ErrNotYetValid) {
				if m.metrics != nil {
					m.metrics.verified(r.Context(), verifyInvalid, &d)
				}
				m.fail(w, r, http.StatusUnauthorized, CodeInvalidKey, msgInvalid)
				return
			}
			if m.metrics != nil {
				m.metrics.verified(r.Context(), verifyError, &d)
			}
			m.fail(w, r, http.StatusServiceUnavailable, CodeUnavailable, msgUnavailable)
			return
		}
		if m.metrics != nil {
			m.metrics.verified(r.Context(), verifyOK, &d)
		}
		m.serve(w, r, p, next, routes, &d)
	})
}

// serve handles a request whose key verified: every outcome from here on
// counts as usage of the key.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, p apikey.Principal, next http.Handler, routes Router, dr *draw) {
	var sw *statusWriter
	if m.cfg.Usage != nil {
		sw = &statusWriter{ResponseWriter: w, status: http.StatusOK}
		w = sw
	}
	pattern := ""
	if routes != nil {
		var h http.Handler
		if h, pattern = routes.Handler(r); pattern == "" {
			m.unrouted(w, r, h)
			m.record(sw, r, p, pattern)
			return
		}
	}
	a := authenticate(r, p)
	r = &a.req
	if page, browser := pageOf(r); browser && !m.cfg.AllowBrowsers && !allowsPage(p, page) {
		m.fail(w, r, http.StatusForbidden, CodeBrowserBlocked, msgBrowser)
		m.record(sw, r, p, pattern)
		return
	}
	if rs := p.Restrictions(); !rs.IsZero() {
		if code, msg := m.restricted(r, &rs, pattern); code != "" {
			m.fail(w, r, http.StatusForbidden, code, msg)
			m.record(sw, r, p, pattern)
			return
		}
	}
	if m.cfg.Limiter != nil {
		var start time.Time
		if m.metrics != nil && !dr.start.IsZero() {
			start = time.Now()
		}
		acct := p.Account()
		d, kp, err := m.limit(r, p, &acct, pattern)
		if m.metrics != nil {
			m.metrics.decided(r.Context(), acct.Plan, decisionOutcome(&d, err), dr, start)
		}
		if err != nil {
			m.cfg.OnAuthFailure(r, fmt.Errorf("%w: %w", errLimiterDown, err))
			m.fail(w, r, http.StatusServiceUnavailable, CodeUnavailable, msgUnavailable)
			m.record(sw, r, p, pattern)
			return
		}
		if !d.FailedOpen {
			a.headers.Set(w.Header(), d.Limit, d.Remaining, d.Reset, d.RetryAfterSeconds())
		}
		m.notice(p, &acct, kp, &d)
		ratelimit.SetIETFHeaders(w.Header(), &d, m.cfg.IETF)
		if !d.Allowed {
			denied := d // a copy for the hook, so d itself stays on the stack
			m.cfg.OnRateLimited(r, p, &denied)
			e := Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: msgRateLimited, RetryAfter: d.RetryAfterSeconds()}
			if d.Quota {
				e.Code, e.Message = CodeQuotaExceeded, msgQuotaExceeded
			}
			m.refuse(w, r, &e)
			m.record(sw, r, p, pattern)
			return
		}
	}
	if m.cfg.HideKey {
		r.Header = r.Header.Clone()
		for _, name := range m.cfg.KeyHeaders {
			r.Header.Del(name)
		}
	}
	next.ServeHTTP(w, r)
	m.record(sw, r, p, pattern)
}

// unrouted answers a request that matches no route, through Errors: 404,
// or 405 with the Allow header when the router (h answers as it would)
// knows the path under another method.
func (m *Middleware) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	if c.status == http.StatusMethodNotAllowed {
		w.Header()["Allow"] = c.header["Allow"]
		m.fail(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, msgMethodNotAllowed)
		return
	}
	m.fail(w, r, http.StatusNotFound, CodeNotFound, msgNotFound)
}

// captureWriter keeps the status and headers a handler writes and drops
// its body.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
func (c *captureWriter) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// restricted checks the key's IP, referrer and endpoint restrictions.
func (m *Middleware) restricted(r *http.Request, rs *apikey.Restrictions, pattern string) (code, msg string) {
	switch {
	case !rs.AllowsIP(m.ClientIP(r)):
		return CodeIPNotAllowed, msgIP
	case !rs.AllowsReferrer(page(r)):
		return CodeReferrerBlocked, msgReferrer
	}
	if len(rs.AllowedEndpoints) > 0 {
		method, path := r.Method, r.URL.Path
		if pattern != "" {
			method, path = splitPattern(r.Method, pattern)
		}
		if !rs.AllowsEndpoint(method, path) {
			return CodeEndpointBlocked, msgEndpoint
		}
	}
	return "", ""
}

// pageOf returns the web page a request came from (its Origin, else its
// Referer) and whether a browser made it from a page: it has an Origin,
// or a Sec-Fetch-Site other than "none" (which a typed address or a
// bookmark sends).
func pageOf(r *http.Request) (url string, browser bool) {
	// Indexed, not Get: the names are canonical already, and this runs
	// on every request.
	origin, site := r.Header["Origin"], r.Header["Sec-Fetch-Site"]
	if len(origin) == 0 && (len(site) == 0 || site[0] == "none") {
		return "", false
	}
	return page(r), true
}

// allowsPage reports whether p's key is meant for the web page page: it
// lists the page's host in its allowed referrers.
func allowsPage(p apikey.Principal, page string) bool {
	rs := p.Restrictions()
	return len(rs.AllowedReferrers) > 0 && rs.AllowsReferrer(page)
}

// page returns the page a request names as its origin: Origin, unless
// absent or "null" (an opaque origin), else Referer.
func page(r *http.Request) string {
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		return origin
	}
	return r.Header.Get("Referer")
}

// splitPattern returns the method and path of a ServeMux pattern such as
// "GET /items/{id}" or "/items/" (any method: the request's).
func splitPattern(method, pattern string) (string, string) {
	if m, p, ok := strings.Cut(pattern, " "); ok {
		return m, strings.TrimSpace(p)
	}
	return method, pattern
}

// unmatched is the endpoint under which requests that match no route are
// counted.
const unmatched = "unmatched"

// record counts the request as usage of the key, under its route pattern.
func (m *Middleware) record(sw *statusWriter, r *http.Request, p apikey.Principal, pattern string) {
	if sw == nil {
		return
	}
	if pattern == "" {
		pattern = r.Pattern // set by a ServeMux that served r
	}
	// Raw paths never become endpoints: their number is unbounded. A
	// pattern with a method ("GET /items/{id}") is the endpoint as it is,
	// so the common case builds no string.
	var endpoint string
	switch {
	case pattern == "":
		endpoint = unmatched // whatever the method: clients choose it
	case strings.Contains(pattern, " "):
		endpoint = pattern
	default:
		endpoint = method(r.Method) + " " + pattern
	}
	m.cfg.Usage.Record(p.KeyID(), endpoint, sw.status, m.cfg.Clock())
}

// method returns a standard method as it is and folds any other into
// "OTHER": a pattern without a method matches whatever method a client
// makes up.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// ClientIP returns the client's address: RemoteAddr, unless that is a
// trusted proxy, in which case the rightmost X-Forwarded-For address that
// is not a trusted proxy. X-Forwarded-For from anyone else is ignored: it
// is whatever the client wrote.
func (m *Middleware) ClientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !m.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = hop.Unmap()
		if !m.trusted(addr) {
			return addr
		}
	}
	return addr
}

func (m *Middleware) trusted(addr netip.Addr) bool {
	for _, p := range m.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// statusWriter remembers the response status for usage recording.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streaming handlers (server-sent events) working for code
// that asserts http.Flusher rather than using http.ResponseController.
func (w *statusWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
