package middleware

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is a refusal the middleware answers with. Message is safe to show
// a client: it never contains a key or internal error text.
type Error struct {
	// Status is the HTTP status: 401, 403, 404, 405, 429 or 503.
	Status int
	// Code is a stable machine-readable reason, such as "invalid_key",
	// "missing_permission", "wrong_project", "ip_not_allowed",
	// "rate_limited", "quota_exceeded" or "unavailable".
	Code string
	// Message is the human-readable reason.
	Message string
	// RetryAfter is the whole seconds to wait, on a 429; 0 when waiting
	// will not help (credits that no refill restores), and then no
	// Retry-After is sent.
	RetryAfter int64
}

// ErrorWriter writes an [Error] as the response. The presets cover the
// shapes of the systems keygate replaces; write your own for anything else.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, e *Error)

// The error codes.
const (
	CodeInvalidKey        = "invalid_key"
	CodeMissingPermission = "missing_permission"
	CodeWrongProject      = "wrong_project"
	CodeIPNotAllowed      = "ip_not_allowed"
	CodeReferrerBlocked   = "referrer_not_allowed"
	CodeEndpointBlocked   = "endpoint_not_allowed"
	CodeBrowserBlocked    = "browser_not_allowed"
	CodeNotFound          = "not_found"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeRateLimited       = "rate_limited"
	CodeQuotaExceeded     = "quota_exceeded"
	CodeUnavailable       = "unavailable"
)

func writeJSON(w http.ResponseWriter, status int, contentType string, body any) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// prepare sets what every error response carries: WWW-Authenticate on 401
// and Retry-After on 429.
func prepare(w http.ResponseWriter, e *Error) {
	switch e.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	case http.StatusTooManyRequests:
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(e.RetryAfter, 10))
		}
	}
}

// DefaultErrors writes {"error":"..."}, with "retry_after" on a 429 that
// waiting lifts.
func DefaultErrors(w http.ResponseWriter, _ *http.Request, e *Error) {
	prepare(w, e)
	if e.Status == http.StatusTooManyRequests && e.RetryAfter > 0 {
		writeJSON(w, e.Status, "application/json", struct {
			Error      string `json:"error"`
			RetryAfter int64  `json:"retry_after"`
		}{e.Message, e.RetryAfter})
		return
	}
	writeJSON(w, e.Status, "application/json", struct {
		Error string `json:"error"`
	}{e.Message})
}

// DetailErrors writes {"detail":"..."}, the shape of FastAPI services.
func DetailErrors(w http.ResponseWriter, _ *http.Request, e *Error) {
	prepare(w, e)
	writeJSON(w, e.Status, "application/json", struct {
		Detail     string `json:"detail"`
		RetryAfter int64  `json:"retry_after,omitempty"`
	}{e.Message, e.RetryAfter})
}

// CodeErrors writes {"error":{"code":"...","message":"..."}}, with the codes "unauthorized", "forbidden", "rate_limited" and
// "unavailable".
func CodeErrors(w http.ResponseWriter, _ *http.Request, e *Error) {
	prepare(w, e)
	code := e.Code
	switch e.Status {
	case http.StatusUnauthorized:
		code = "unauthorized"
	case http.StatusForbidden:
		code = "forbidden"
	}
	type inner struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		RetryAfter int64  `json:"retry_after,omitempty"`
	}
	writeJSON(w, e.Status, "application/json", struct {
		Error inner `json:"error"`
	}{inner{code, e.Message, e.RetryAfter}})
}

// ProblemErrors writes RFC 9457 application/problem+json, with the code as
// a relative type URI ("about:blank" is not used, so clients can branch on
// the type).
func ProblemErrors(w http.ResponseWriter, _ *http.Request, e *Error) {
	prepare(w, e)
	writeJSON(w, e.Status, "application/problem+json", struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Status     int    `json:"status"`
		Detail     string `json:"detail"`
		RetryAfter int64  `json:"retry_after,omitempty"`
	}{"/problems/" + e.Code, http.StatusText(e.Status), e.Status, e.Message, e.RetryAfter})
}
