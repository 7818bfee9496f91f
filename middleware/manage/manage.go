// Package manage is the key owner's self-service: a REST handler through
// which the host's logged-in users create, list, rotate and revoke their
// own API keys, read their usage, and see their account's limits and
// credits.
//
// It serves a different audience from package middleware, which guards
// the API that keys call: here the caller is a person signed in to the
// host (the host's session or JWT, checked by [Config].Authenticate), and
// an API key is refused outright, so that a leaked key can never mint or
// revoke keys.
package manage

import (
	"context"
	_ "embed" // the OpenAPI description
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
)

// Config configures a [Handler]. Service and Authenticate are required;
// the zero value of every other field selects the default it names.
type Config struct {
	// Service is the key lifecycle behind the endpoints.
	Service *apikey.Service
	// Authenticate is the host's own login check (session, JWT): it
	// returns the account whose keys the request manages. Requests that
	// carry an API key are refused before it is called.
	Authenticate func(r *http.Request) (account string, ok bool)
	// Prefix is where the endpoints are mounted. Default "/api/v1/api-keys".
	Prefix string
	// Permissions are granted to a key whose create request names none.
	// Default read only, so that a key created with only a name can read
	// and do nothing else.
	Permissions []apikey.Permission
	// Usage is where usage counts are read from, usually the store that
	// a [usage.Recorder] writes to. Default nil: the usage endpoint
	// answers 501 and keys show no last_used_at.
	Usage usage.Store
	// Recorder, when set, is flushed before usage is read, so that the
	// counts include this instance's latest requests.
	Recorder *usage.Recorder
	// Errors writes every error response. Default
	// [middleware.DefaultErrors], {"error":"..."}.
	Errors middleware.ErrorWriter
	// Clock returns the current time for the status field. Default
	// [time.Now].
	Clock func() time.Time
	// AccountPath is where the account endpoint is mounted (route it to
	// the Handler too). Default "/api/v1/account".
	AccountPath string
	// Limiter, when set, is asked where the account's limits and credit
	// balance stand (a request that spends nothing); without it the
	// account endpoint shows the limits and the granted balance alone.
	Limiter ratelimit.Limiter
	// Actor says who makes each change and from where, for the audit
	// trail: the host's signed-in user, and the client's address (behind
	// a proxy, [middleware.Middleware.ClientIP]). Default: no user, and
	// the request's RemoteAddr.
	Actor func(r *http.Request) apikey.Actor
	// AccountUpdates serves PUT on AccountPath: the signed-in caller sets
	// its own account's plan, custom limits and credits. Turn it on only
	// when Authenticate vouches for that (an operator's login, a billing
	// system); default off, answered 405.
	AccountUpdates bool
	// Webhooks serves the account's webhook endpoints at WebhooksPath
	// (route it to the Handler too). They are kept in the account
	// (apikey.Account.Webhooks), so the store must keep accounts; deliver
	// to them with apikey/event/webhook's Accounts. Default off (404).
	Webhooks bool
	// WebhooksPath is where the webhook endpoints are mounted. Default
	// "/api/v1/webhooks".
	WebhooksPath string
	// AllowPrivateWebhooks lets accounts register http URLs and loopback
	// or private addresses: local development only. Default: https to
	// public addresses only (see webhook.CheckURL).
	AllowPrivateWebhooks bool
	// WebhookDeliveries, when set (the sink that delivers to accounts'
	// endpoints, with its Log), serves each endpoint's delivery log and
	// sends a logged event again. Default: both answer 501.
	WebhookDeliveries *webhook.Accounts
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// maxGrace bounds a rotation's grace period.
const maxGrace = 30 * 24 * time.Hour

// Handler serves the key-management endpoints:
//
//	POST   {prefix}                create (201, the key shown once)
//	GET    {prefix}                list, ?limit=&cursor= (never the key or its hash)
//	GET    {prefix}/{id}           one key
//	PATCH  {prefix}/{id}           update any field of create but environment
//	POST   {prefix}/{id}/disable   pause the key (it answers 401 until enabled)
//	POST   {prefix}/{id}/enable    resume it
//	DELETE {prefix}/{id}           revoke
//	POST   {prefix}/{id}/rotate    rotate, {"grace_period_seconds":N} (201)
//	GET    {prefix}/{id}/usage     usage counters
//	GET    {prefix}/{id}/events    the key's audit trail, ?limit=&cursor=
//	GET    {prefix}/events         the account's audit trail, ?limit=&cursor=
//	GET    {account}               the account's plan, limits and credits
//	PUT    {account}               change them (with [Config].AccountUpdates)
//	GET    {prefix}/openapi.json   the OpenAPI 3.1 description of all of them (no sign-in needed)
//
// and with [Config].Webhooks the account's webhook endpoints, up to 10:
//
//	POST   {webhooks}                    register {"url","events","description"} (201, its secret shown once)
//	GET    {webhooks}                    list them, {"data":[...]} (never a secret)
//	GET    {webhooks}/{id}               one
//	PATCH  {webhooks}/{id}               change url, events, description, disabled
//	DELETE {webhooks}/{id}               delete
//	POST   {webhooks}/{id}/rotate-secret a new secret, shown once (the old one signs too for a day)
//	GET    {webhooks}/{id}/deliveries    its latest 100 delivery attempts (with [Config].WebhookDeliveries)
//	POST   {webhooks}/{id}/deliveries/{delivery}/retry  send that attempt's event again now
//
// A URL that is not https, or resolves to a loopback, private, link-local
// or metadata address, is refused with 400.
//
// Pages hold up to limit items (default 20, at most 100), newest event or
// oldest key first, and next_cursor names the next page (null on the
// last). Errors are written by [Config].Errors with 400 (bad input, the
// key limit, a cursor that is not one), 401 (not logged in, or an API key
// presented), 404 (unknown key, or another account's), 409 (a revoked,
// expired, rotated or disabled key, or a concurrent change), 501 (no
// usage store, or a store that keeps no events) and 503; their text never
// contains internal errors.
type Handler struct {
	cfg Config
	mux *http.ServeMux
	// routes are the patterns served, for the description's test.
	routes []string
	// spec is the OpenAPI description, at specPath.
	spec     []byte
	specPath string
}

// openAPI is the OpenAPI 3.1 description of the endpoints, as JSON.
//
//go:embed openapi.json
var openAPI string

// handle serves pattern with fn.
func (h *Handler) handle(pattern string, fn http.HandlerFunc) {
	h.mux.HandleFunc(pattern, fn)
	h.routes = append(h.routes, pattern)
}

// New returns the Handler of cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil || cfg.Authenticate == nil {
		return nil, fmt.Errorf("manage: %w: Config needs Service and Authenticate", apikey.ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/api/v1/api-keys"
	}
	if len(cfg.Permissions) == 0 {
		cfg.Permissions = []apikey.Permission{apikey.Read}
	}
	if cfg.Errors == nil {
		cfg.Errors = middleware.DefaultErrors
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.AccountPath == "" {
		cfg.AccountPath = "/api/v1/account"
	}
	if cfg.WebhooksPath == "" {
		cfg.WebhooksPath = "/api/v1/webhooks"
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	p := strings.TrimSuffix(cfg.Prefix, "/")
	h.handle("POST "+p, h.create)
	h.mux.HandleFunc("POST "+p+"/{$}", h.create)
	h.handle("GET "+p, h.list)
	h.mux.HandleFunc("GET "+p+"/{$}", h.list)
	h.handle("GET "+p+"/{id}", h.get)
	h.handle("PATCH "+p+"/{id}", h.update)
	h.handle("POST "+p+"/{id}/disable", h.disable)
	h.handle("POST "+p+"/{id}/enable", h.enable)
	h.handle("DELETE "+p+"/{id}", h.revoke)
	h.handle("POST "+p+"/{id}/rotate", h.rotate)
	h.handle("GET "+p+"/{id}/usage", h.usage)
	h.handle("GET "+p+"/{id}/events", h.events)
	h.handle("GET "+p+"/events", h.events)
	h.handle("GET "+cfg.AccountPath, h.getAccount)
	h.handle("PUT "+cfg.AccountPath, h.putAccount)
	if cfg.Webhooks {
		wp := strings.TrimSuffix(cfg.WebhooksPath, "/")
		h.handle("POST "+wp, h.createEndpoint)
		h.handle("GET "+wp, h.listEndpoints)
		h.handle("GET "+wp+"/{id}", h.getEndpoint)
		h.handle("PATCH "+wp+"/{id}", h.updateEndpoint)
		h.handle("DELETE "+wp+"/{id}", h.deleteEndpoint)
		h.handle("POST "+wp+"/{id}/rotate-secret", h.rotateSecret)
		h.handle("GET "+wp+"/{id}/deliveries", h.deliveries)
		h.handle("POST "+wp+"/{id}/deliveries/{delivery}/retry", h.retryDelivery)
	}
	// The description names the default paths; it is served with this
	// handler's.
	h.specPath = p + "/openapi.json"
	h.routes = append(h.routes, "GET "+h.specPath)
	h.spec = []byte(strings.NewReplacer(`"/api/v1/api-keys`, `"`+p, `"/api/v1/account"`, `"`+cfg.AccountPath+`"`,
		`"/api/v1/webhooks`, `"`+strings.TrimSuffix(cfg.WebhooksPath, "/")).Replace(openAPI))
	return h, nil
}

type accountKey struct{}

func accountFrom(r *http.Request) string {
	s, _ := r.Context().Value(accountKey{}).(string)
	return s
}

// ServeHTTP implements [http.Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == h.specPath {
		// The description is public: it holds no account's data.
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(h.spec)
		return
	}
	if h.presentsAPIKey(r) {
		h.fail(w, r, http.StatusUnauthorized, "api_key_refused", "API keys cannot manage API keys; sign in instead")
		return
	}
	account, ok := h.cfg.Authenticate(r)
	if !ok || account == "" {
		h.fail(w, r, http.StatusUnauthorized, "unauthorized", "Could not validate credentials")
		return
	}
	ctx := context.WithValue(r.Context(), accountKey{}, account)
	h.mux.ServeHTTP(w, r.WithContext(apikey.WithActor(ctx, h.actor(r))))
}

// actor is who makes the request's changes.
func (h *Handler) actor(r *http.Request) apikey.Actor {
	if h.cfg.Actor != nil {
		return h.cfg.Actor(r)
	}
	a := apikey.Actor{IP: r.RemoteAddr}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a.IP = ap.Addr().Unmap().String()
	}
	return a
}

// presentsAPIKey reports whether any key header of the request carries
// something shaped like an API key of the service's format.
func (h *Handler) presentsAPIKey(r *http.Request) bool {
	if len(r.Header.Values("X-API-Key")) > 0 {
		return true
	}
	for _, v := range r.Header.Values("Authorization") {
		if token, ok := middleware.Bearer(v); ok {
			// Only a token of the key format gets past ErrMalformed, which
			// Verify decides before any store is asked.
			if _, err := h.cfg.Service.Verify(r.Context(), token); !errors.Is(err, apikey.ErrMalformed) {
				return true
			}
		}
	}
	return false
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	h.cfg.Errors(w, r, &middleware.Error{Status: status, Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// keyJSON is a key as the endpoints show it.
type keyJSON struct {
	ID               string              `json:"id"`
	APIKey           string              `json:"api_key,omitempty"`
	KeyPrefix        string              `json:"key_prefix"`
	Name             string              `json:"name"`
	Description      string              `json:"description"`
	Permissions      []apikey.Permission `json:"permissions"`
	ProjectID        *string             `json:"project_id"`
	Environment      string              `json:"environment,omitempty"`
	Plan             string              `json:"plan,omitempty"`
	Limits           []limitJSON         `json:"limits,omitempty"`
	CreatedAt        time.Time           `json:"created_at"`
	ExpiresAt        *time.Time          `json:"expires_at"`
	LastUsedAt       *time.Time          `json:"last_used_at,omitempty"`
	Status           apikey.Status       `json:"status,omitempty"`
	ReplacedBy       string              `json:"replaced_by,omitempty"`
	AllowedIPs       []string            `json:"allowed_ips,omitempty"`
	AllowedReferrers []string            `json:"allowed_referrers,omitempty"`
	AllowedEndpoints []string            `json:"allowed_endpoints,omitempty"`
	NotBefore        *time.Time          `json:"not_before,omitempty"`
	DisabledAt       *time.Time          `json:"disabled_at,omitempty"`
	Metadata         map[string]string   `json:"metadata,omitempty"`
}

func toJSON(k apikey.Key) keyJSON {
	out := keyJSON{
		ID: k.ID, KeyPrefix: k.DisplayPrefix, Name: k.Name, Description: k.Description,
		Permissions: k.Permissions, Environment: k.Environment, Plan: k.Plan, CreatedAt: k.CreatedAt,
		ReplacedBy: k.ReplacedBy, Limits: encodeLimits(k.Limits),
		AllowedReferrers: k.Restrictions.AllowedReferrers, AllowedEndpoints: k.Restrictions.AllowedEndpoints,
	}
	if out.Permissions == nil {
		out.Permissions = []apikey.Permission{}
	}
	if k.ProjectID != "" {
		out.ProjectID = &k.ProjectID
	}
	if !k.ExpiresAt.IsZero() {
		out.ExpiresAt = &k.ExpiresAt
	}
	if !k.NotBefore.IsZero() {
		out.NotBefore = &k.NotBefore
	}
	if !k.DisabledAt.IsZero() {
		out.DisabledAt = &k.DisabledAt
	}
	out.Metadata = k.Metadata
	for _, p := range k.Restrictions.AllowedIPs {
		out.AllowedIPs = append(out.AllowedIPs, p.String())
	}
	return out
}

// decode reads a JSON body strictly: unknown fields, trailing data and
// bodies over 64 KiB are errors.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("request body is empty")
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data after the object")
	}
	return nil
}

type createRequest struct {
	Name             string            `json:"name"`
	Description      string            `json:"description"`
	Permissions      []string          `json:"permissions"`
	ProjectID        string            `json:"project_id"`
	Environment      string            `json:"environment"`
	ExpiresAt        string            `json:"expires_at"`
	Plan             string            `json:"plan"`
	Limits           []limitJSON       `json:"limits"`
	AllowedIPs       []string          `json:"allowed_ips"`
	AllowedReferrers []string          `json:"allowed_referrers"`
	AllowedEndpoints []string          `json:"allowed_endpoints"`
	NotBefore        string            `json:"not_before"`
	Metadata         map[string]string `json:"metadata"`
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	p := apikey.CreateParams{
		Owner: accountFrom(r), Name: req.Name, Description: req.Description, ProjectID: req.ProjectID,
		Environment: req.Environment, Plan: req.Plan, Permissions: h.cfg.Permissions, Metadata: req.Metadata,
		Restrictions: apikey.Restrictions{AllowedReferrers: req.AllowedReferrers, AllowedEndpoints: req.AllowedEndpoints},
	}
	var err error
	if p.Limits, err = decodeLimits(req.Limits); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	if req.Permissions != nil {
		p.Permissions = make([]apikey.Permission, len(req.Permissions))
		for i, perm := range req.Permissions {
			p.Permissions[i] = apikey.Permission(perm)
		}
	}
	if p.ExpiresAt, err = parseTime("expires_at", req.ExpiresAt); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	if p.NotBefore, err = parseTime("not_before", req.NotBefore); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	ips, err := parseNetworks(req.AllowedIPs)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	p.Restrictions.AllowedIPs = ips
	issued, err := h.cfg.Service.Create(r.Context(), p)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	h.writeIssued(w, issued)
}

// parseTime parses an RFC 3339 time; "" is none.
func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.IsZero() {
		// The zero time means "none" to the service: refused here rather
		// than, say, issue a key that never expires.
		return time.Time{}, &apikey.InputError{Field: field, Reason: "must be an RFC 3339 time, such as 2030-01-31T00:00:00Z"}
	}
	return t, nil
}

// parseNetworks parses allowed client networks: each entry a CIDR prefix
// ("10.0.0.0/8") or a single address (taken as /32 or /128).
func parseNetworks(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, &apikey.InputError{Field: "allowed_ips", Reason: fmt.Sprintf("%q is not a CIDR prefix", e)}
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, &apikey.InputError{Field: "allowed_ips", Reason: fmt.Sprintf("%q is not an IP address or CIDR prefix", e)}
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (h *Handler) writeIssued(w http.ResponseWriter, issued apikey.Issued) {
	out := toJSON(issued.Key)
	out.APIKey = issued.Secret.Reveal() // the one place the key is shown
	writeJSON(w, http.StatusCreated, out)
}

// lifecycleError maps apikey errors to responses; internal error text is
// never shown.
func (h *Handler) lifecycleError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *apikey.InputError
	var le *apikey.LimitError
	switch {
	case errors.As(err, &ie):
		h.fail(w, r, http.StatusBadRequest, "invalid_input", fmt.Sprintf("Invalid %s: %s", ie.Field, ie.Reason))
	case errors.As(err, &le):
		h.fail(w, r, http.StatusBadRequest, "too_many_keys", fmt.Sprintf("Maximum number of API keys (%d) reached. Please expire unused keys.", le.Max))
	case errors.Is(err, apikey.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "not_found", "API key not found")
	case errors.Is(err, apikey.ErrRotated):
		h.fail(w, r, http.StatusConflict, "rotated", "API key was already rotated; rotate its replacement instead")
	case errors.Is(err, apikey.ErrRevoked):
		h.fail(w, r, http.StatusConflict, "revoked", "API key is revoked")
	case errors.Is(err, apikey.ErrExpired):
		h.fail(w, r, http.StatusConflict, "expired", "API key has expired")
	case errors.Is(err, apikey.ErrDisabled):
		h.fail(w, r, http.StatusConflict, "disabled", "API key is disabled; enable it first")
	case errors.Is(err, apikey.ErrConflict):
		h.fail(w, r, http.StatusConflict, "conflict", "API key was changed by another request; read it again and retry")
	case errors.Is(err, errors.ErrUnsupported):
		// The store lacks a capability: the audit trail, or accounts.
		h.fail(w, r, http.StatusNotImplemented, "unsupported", "Not supported by this service's key store")
	default:
		h.fail(w, r, http.StatusServiceUnavailable, middleware.CodeUnavailable, "Service temporarily unavailable")
	}
}

// flush writes this instance's pending usage before it is read.
func (h *Handler) flush(r *http.Request) {
	if h.cfg.Recorder != nil {
		_ = h.cfg.Recorder.Flush(r.Context())
	}
}

// withStatus adds the key's status at now and its last use.
func (h *Handler) withStatus(r *http.Request, k apikey.Key, now time.Time) (keyJSON, error) {
	out := toJSON(k)
	out.Status = k.Status(now)
	if h.cfg.Usage == nil {
		return out, nil
	}
	u, err := h.cfg.Usage.Usage(r.Context(), k.ID)
	if err != nil {
		return keyJSON{}, err
	}
	if !u.LastUsedAt.IsZero() {
		out.LastUsedAt = &u.LastUsedAt
	}
	return out, nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit, ok := h.pageLimit(w, r)
	if !ok {
		return
	}
	h.flush(r)
	page, err := h.cfg.Service.ListPage(r.Context(), accountFrom(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	now := h.cfg.Clock()
	data := make([]keyJSON, 0, len(page.Items))
	for _, k := range page.Items {
		out, err := h.withStatus(r, k, now)
		if err != nil {
			h.lifecycleError(w, r, err)
			return
		}
		data = append(data, out)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": cursorJSON(page.Next)})
}

// maxPageLimit is the largest page a list answers, as apikey's are.
const maxPageLimit = 100

// pageLimit reads the limit query parameter, 0 when absent.
func (h *Handler) pageLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageLimit {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", fmt.Sprintf("limit must be a number from 1 to %d", maxPageLimit))
		return 0, false
	}
	return n, true
}

// cursorJSON is a next page's cursor, null on the last page.
func cursorJSON(next string) any {
	if next == "" {
		return nil
	}
	return next
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	limit, ok := h.pageLimit(w, r)
	if !ok {
		return
	}
	page, err := h.cfg.Service.Events(r.Context(), accountFrom(r), r.PathValue("id"), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	data := page.Items
	if data == nil {
		data = []event.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": cursorJSON(page.Next)})
}

func (h *Handler) disable(w http.ResponseWriter, r *http.Request) {
	h.writeKey(w, r)(h.cfg.Service.Disable(r.Context(), accountFrom(r), r.PathValue("id")))
}

func (h *Handler) enable(w http.ResponseWriter, r *http.Request) {
	h.writeKey(w, r)(h.cfg.Service.Enable(r.Context(), accountFrom(r), r.PathValue("id")))
}

// writeKey returns a function that answers with a changed key, or its
// error.
func (h *Handler) writeKey(w http.ResponseWriter, r *http.Request) func(apikey.Key, error) {
	return func(k apikey.Key, err error) {
		if err == nil {
			var out keyJSON
			if out, err = h.withStatus(r, k, h.cfg.Clock()); err == nil {
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
		h.lifecycleError(w, r, err)
	}
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	h.flush(r)
	k, err := h.cfg.Service.Get(r.Context(), accountFrom(r), r.PathValue("id"))
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	out, err := h.withStatus(r, k, h.cfg.Clock())
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Service.Revoke(r.Context(), accountFrom(r), r.PathValue("id")); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": "API key revoked successfully"})
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GracePeriodSeconds int64 `json:"grace_period_seconds"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			h.fail(w, r, http.StatusBadRequest, "invalid_input", err.Error())
			return
		}
	}
	if req.GracePeriodSeconds < 0 || req.GracePeriodSeconds > int64(maxGrace/time.Second) {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", fmt.Sprintf("grace_period_seconds must be between 0 and %d (30 days)", int64(maxGrace/time.Second)))
		return
	}
	issued, err := h.cfg.Service.Rotate(r.Context(), accountFrom(r), r.PathValue("id"), time.Duration(req.GracePeriodSeconds)*time.Second)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	h.writeIssued(w, issued)
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Usage == nil {
		h.fail(w, r, http.StatusNotImplemented, "unsupported", "Usage is not recorded by this service")
		return
	}
	h.flush(r)
	id := r.PathValue("id")
	if _, err := h.cfg.Service.Get(r.Context(), accountFrom(r), id); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	u, err := h.cfg.Usage.Usage(r.Context(), id)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	out := map[string]any{
		"total_requests": u.TotalRequests, "errors": u.Errors, "error_rate": u.ErrorRate(),
		"by_endpoint": u.ByEndpoint, "last_used_at": nil,
	}
	if !u.LastUsedAt.IsZero() {
		out["last_used_at"] = u.LastUsedAt
	}
	writeJSON(w, http.StatusOK, out)
}
