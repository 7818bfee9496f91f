package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey"
)

// ManagementConfig configures [NewManagement].
type ManagementConfig struct {
	// Service is the key lifecycle behind the endpoints. Required.
	Service *apikey.Service
	// Authenticate is the host's own login check (session, JWT): it
	// returns the account whose keys the request manages. Required.
	// Requests carrying an API key are refused before it is called: an
	// API key can never manage API keys.
	Authenticate func(r *http.Request) (account string, ok bool)
	// Prefix is where the endpoints are mounted. Default "/api/v1/api-keys".
	Prefix string
	// Clock returns the current time for the status field. Default
	// [time.Now].
	Clock func() time.Time
	// Usage, when set, is flushed before usage is read, so that the
	// counts include this instance's latest requests.
	Usage interface{ Flush(context.Context) error }
}

// maxBody bounds a management request body.
const maxBody = 64 << 10

// NewManagement returns the key-management REST handler:
//
//	POST   {prefix}                create (201, the key shown once)
//	GET    {prefix}                list (never the key or its hash)
//	GET    {prefix}/{id}           one key
//	DELETE {prefix}/{id}           revoke
//	POST   {prefix}/{id}/rotate    rotate, {"grace_period_seconds":N} (201)
//	GET    {prefix}/{id}/usage     usage counters
//
// Errors are {"error":"..."} with 400 (bad input), 401 (not logged in, or
// an API key presented), 404 (unknown key, or another account's) and 503.
func NewManagement(cfg ManagementConfig) (http.Handler, error) {
	if cfg.Service == nil || cfg.Authenticate == nil {
		return nil, errors.New("middleware: ManagementConfig needs Service and Authenticate")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/api/v1/api-keys"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	h := &management{cfg: cfg, mux: http.NewServeMux()}
	p := strings.TrimSuffix(cfg.Prefix, "/")
	h.mux.HandleFunc("POST "+p, h.create)
	h.mux.HandleFunc("POST "+p+"/{$}", h.create)
	h.mux.HandleFunc("GET "+p, h.list)
	h.mux.HandleFunc("GET "+p+"/{$}", h.list)
	h.mux.HandleFunc("GET "+p+"/{id}", h.get)
	h.mux.HandleFunc("DELETE "+p+"/{id}", h.revoke)
	h.mux.HandleFunc("POST "+p+"/{id}/rotate", h.rotate)
	h.mux.HandleFunc("GET "+p+"/{id}/usage", h.usage)
	return h, nil
}

type management struct {
	cfg ManagementConfig
	mux *http.ServeMux
}

type accountKey struct{}

func (h *management) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.presentsAPIKey(r) {
		writeError(w, http.StatusUnauthorized, "API keys cannot manage API keys; sign in instead")
		return
	}
	account, ok := h.cfg.Authenticate(r)
	if !ok || account == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		writeError(w, http.StatusUnauthorized, "Could not validate credentials")
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(contextWithAccount(r, account)))
}

// presentsAPIKey reports whether the request carries anything shaped like
// an API key of the service's format.
func (h *management) presentsAPIKey(r *http.Request) bool {
	if r.Header.Get("X-API-Key") != "" {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	_, err := h.cfg.Service.Format().Parse(strings.TrimSpace(token))
	return err == nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, "application/json", map[string]string{"error": msg})
}

// keyJSON is a key as the management API shows it.
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
	CreatedAt        time.Time           `json:"created_at"`
	ExpiresAt        *time.Time          `json:"expires_at"`
	LastUsedAt       *time.Time          `json:"last_used_at,omitempty"`
	Status           apikey.Status       `json:"status,omitempty"`
	AllowedIPs       []string            `json:"allowed_ips,omitempty"`
	AllowedReferrers []string            `json:"allowed_referrers,omitempty"`
	AllowedEndpoints []string            `json:"allowed_endpoints,omitempty"`
}

func toJSON(k apikey.Key) keyJSON {
	out := keyJSON{
		ID: k.ID, KeyPrefix: k.DisplayPrefix, Name: k.Name, Description: k.Description,
		Permissions: k.Permissions, Environment: k.Environment, Plan: k.Plan, CreatedAt: k.CreatedAt,
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
	Name             string   `json:"name"`
	Description      string   `json:"description"`
	Permissions      []string `json:"permissions"`
	ProjectID        string   `json:"project_id"`
	Environment      string   `json:"environment"`
	ExpiresAt        string   `json:"expires_at"`
	Plan             string   `json:"plan"`
	AllowedIPs       []string `json:"allowed_ips"`
	AllowedReferrers []string `json:"allowed_referrers"`
	AllowedEndpoints []string `json:"allowed_endpoints"`
}

func (h *management) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p := apikey.CreateParams{
		Owner: accountFrom(r), Name: req.Name, Description: req.Description, ProjectID: req.ProjectID,
		Environment: req.Environment, Plan: req.Plan,
		Restrictions: apikey.Restrictions{AllowedReferrers: req.AllowedReferrers, AllowedEndpoints: req.AllowedEndpoints},
	}
	for _, perm := range req.Permissions {
		p.Permissions = append(p.Permissions, apikey.Permission(perm))
	}
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			writeError(w, http.StatusBadRequest, "expires_at must be an RFC 3339 time, such as 2030-01-31T00:00:00Z")
			return
		}
		p.ExpiresAt = t
	}
	ips, err := apikey.ParseNetworks(req.AllowedIPs)
	if err != nil {
		h.lifecycleError(w, err)
		return
	}
	p.Restrictions.AllowedIPs = ips
	issued, err := h.cfg.Service.Create(r.Context(), p)
	if err != nil {
		h.lifecycleError(w, err)
		return
	}
	h.writeIssued(w, issued)
}

func (h *management) writeIssued(w http.ResponseWriter, issued apikey.Issued) {
	out := toJSON(issued.Key)
	out.APIKey = issued.Secret.Reveal() // the one place the key is shown
	writeJSON(w, http.StatusCreated, "application/json", out)
}

// lifecycleError maps apikey errors to responses; internal error text is
// never shown.
func (h *management) lifecycleError(w http.ResponseWriter, err error) {
	var ie *apikey.InputError
	var le *apikey.LimitError
	switch {
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid %s: %s", ie.Field, ie.Reason))
	case errors.As(err, &le):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Maximum number of API keys (%d) reached. Please expire unused keys.", le.Max))
	case errors.Is(err, apikey.ErrNotFound):
		writeError(w, http.StatusNotFound, "API key not found")
	case errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrExpired):
		writeError(w, http.StatusConflict, "API key is revoked or expired")
	case errors.Is(err, errors.ErrUnsupported):
		writeError(w, http.StatusNotImplemented, "Usage is not recorded by this store")
	default:
		writeError(w, http.StatusServiceUnavailable, msgUnavailable)
	}
}

// flush writes this instance's pending usage before it is read.
func (h *management) flush(r *http.Request) {
	if h.cfg.Usage != nil {
		_ = h.cfg.Usage.Flush(r.Context())
	}
}

func (h *management) list(w http.ResponseWriter, r *http.Request) {
	h.flush(r)
	keys, err := h.cfg.Service.List(r.Context(), accountFrom(r))
	if err != nil {
		h.lifecycleError(w, err)
		return
	}
	now := h.cfg.Clock()
	data := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		data = append(data, withStatus(k, now))
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{"data": data})
}

// withStatus adds the key's status at now and its last use.
func withStatus(k apikey.Key, now time.Time) keyJSON {
	out := toJSON(k)
	out.Status = k.Status(now)
	if !k.LastUsedAt.IsZero() {
		out.LastUsedAt = &k.LastUsedAt
	}
	return out
}

func (h *management) get(w http.ResponseWriter, r *http.Request) {
	h.flush(r)
	k, err := h.cfg.Service.Get(r.Context(), accountFrom(r), r.PathValue("id"))
	if err != nil {
		h.lifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", withStatus(k, h.cfg.Clock()))
}

func (h *management) revoke(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Service.Revoke(r.Context(), accountFrom(r), r.PathValue("id")); err != nil {
		h.lifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{"success": true, "message": "API key revoked successfully"})
}

func (h *management) rotate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GracePeriodSeconds int64 `json:"grace_period_seconds"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if req.GracePeriodSeconds < 0 || req.GracePeriodSeconds > 30*24*3600 {
		writeError(w, http.StatusBadRequest, "grace_period_seconds must be between 0 and 2592000 (30 days)")
		return
	}
	issued, err := h.cfg.Service.Rotate(r.Context(), accountFrom(r), r.PathValue("id"), time.Duration(req.GracePeriodSeconds)*time.Second)
	if err != nil {
		h.lifecycleError(w, err)
		return
	}
	h.writeIssued(w, issued)
}

func (h *management) usage(w http.ResponseWriter, r *http.Request) {
	h.flush(r)
	u, err := h.cfg.Service.Usage(r.Context(), accountFrom(r), r.PathValue("id"))
	if err != nil {
		h.lifecycleError(w, err)
		return
	}
	out := map[string]any{
		"total_requests": u.TotalRequests, "errors": u.Errors, "error_rate": u.ErrorRate(),
		"by_endpoint": u.ByEndpoint, "last_used_at": nil,
	}
	if !u.LastUsedAt.IsZero() {
		out["last_used_at"] = u.LastUsedAt
	}
	writeJSON(w, http.StatusOK, "application/json", out)
}
