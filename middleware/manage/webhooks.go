package manage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/webhook"
)

// endpointJSON is a webhook endpoint as the endpoints show it: its
// secret only in the answer that made it.
type endpointJSON struct {
	ID          string     `json:"id"`
	URL         string     `json:"url"`
	Events      []string   `json:"events"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	Secret      string     `json:"secret,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DisabledAt  *time.Time `json:"disabled_at"`
}

func showEndpoint(e *event.Endpoint, secret string) endpointJSON {
	out := endpointJSON{ID: e.ID, URL: e.URL, Events: e.Events, Description: e.Description, Status: "active", Secret: secret, CreatedAt: e.CreatedAt}
	if out.Events == nil {
		out.Events = []string{}
	}
	if !e.DisabledAt.IsZero() {
		at := e.DisabledAt
		out.Status, out.DisabledAt = "disabled", &at
	}
	return out
}

// endpointRequest is the body of a create (url required) or a change.
type endpointRequest struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Disabled    *bool     `json:"disabled"`
}

var eventPattern = regexp.MustCompile(`^[a-z][a-z._]*\*?$`)

// check validates req's fields, the URL by [webhook.CheckURL].
func (h *Handler) checkEndpoint(r *http.Request, req *endpointRequest) error {
	if req.URL != nil {
		if err := webhook.CheckURL(r.Context(), *req.URL, h.cfg.AllowPrivateWebhooks); err != nil {
			return &apikey.InputError{Field: "url", Reason: err.Error()}
		}
	}
	if req.Events != nil {
		for _, p := range *req.Events {
			if !eventPattern.MatchString(p) {
				return &apikey.InputError{Field: "events", Reason: fmt.Sprintf("%q is not an event type or a prefix and *", p)}
			}
		}
	}
	if req.Description != nil && len(*req.Description) > 500 {
		return &apikey.InputError{Field: "description", Reason: "is longer than 500 bytes"}
	}
	return nil
}

// apply sets req's fields on e at now.
func (req *endpointRequest) apply(e *event.Endpoint, now time.Time) {
	if req.URL != nil {
		e.URL = *req.URL
	}
	if req.Events != nil {
		e.Events = slices.Clone(*req.Events)
	}
	if req.Description != nil {
		e.Description = *req.Description
	}
	switch {
	case req.Disabled == nil:
	case *req.Disabled && e.DisabledAt.IsZero():
		e.DisabledAt = now
	case !*req.Disabled:
		e.DisabledAt = time.Time{}
	}
}

func newEndpointID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "whep_" + hex.EncodeToString(b[:])
}

var errNoEndpoint = errors.New("no such endpoint")

// endpointError answers err of a change to an endpoint.
func (h *Handler) endpointError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNoEndpoint) {
		h.fail(w, r, http.StatusNotFound, "not_found", "Webhook endpoint not found")
		return
	}
	h.lifecycleError(w, r, err)
}

func (h *Handler) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req endpointRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	if req.URL == nil {
		h.lifecycleError(w, r, &apikey.InputError{Field: "url", Reason: "is required"})
		return
	}
	if err := h.checkEndpoint(r, &req); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	now := h.cfg.Clock()
	e := event.Endpoint{ID: newEndpointID(), Secrets: []string{webhook.NewSecret()}, CreatedAt: now}
	req.apply(&e, now)
	_, err := h.cfg.Service.UpdateAccount(r.Context(), accountFrom(r), func(a *apikey.Account) error {
		a.Webhooks = append(a.Webhooks, e)
		return nil
	})
	if err != nil {
		h.endpointError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, showEndpoint(&e, e.Secrets[0]))
}

func (h *Handler) listEndpoints(w http.ResponseWriter, r *http.Request) {
	a, err := h.cfg.Service.Account(r.Context(), accountFrom(r))
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	out := make([]endpointJSON, len(a.Webhooks))
	for i := range a.Webhooks {
		out[i] = showEndpoint(&a.Webhooks[i], "")
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (h *Handler) getEndpoint(w http.ResponseWriter, r *http.Request) {
	a, err := h.cfg.Service.Account(r.Context(), accountFrom(r))
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	i := slices.IndexFunc(a.Webhooks, func(e event.Endpoint) bool { return e.ID == r.PathValue("id") })
	if i < 0 {
		h.endpointError(w, r, errNoEndpoint)
		return
	}
	writeJSON(w, http.StatusOK, showEndpoint(&a.Webhooks[i], ""))
}

// changeEndpoint changes the endpoint of the request's ID with change,
// as one compare-and-set on the account, and answers with it.
func (h *Handler) changeEndpoint(w http.ResponseWriter, r *http.Request, status int, change func(e *event.Endpoint) (secret string)) {
	var out endpointJSON
	_, err := h.cfg.Service.UpdateAccount(r.Context(), accountFrom(r), func(a *apikey.Account) error {
		i := slices.IndexFunc(a.Webhooks, func(e event.Endpoint) bool { return e.ID == r.PathValue("id") })
		if i < 0 {
			return errNoEndpoint
		}
		secret := change(&a.Webhooks[i])
		out = showEndpoint(&a.Webhooks[i], secret)
		return nil
	})
	if err != nil {
		h.endpointError(w, r, err)
		return
	}
	writeJSON(w, status, out)
}

func (h *Handler) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var req endpointRequest
	if err := decode(r, &req); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	if err := h.checkEndpoint(r, &req); err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	now := h.cfg.Clock()
	h.changeEndpoint(w, r, http.StatusOK, func(e *event.Endpoint) string {
		req.apply(e, now)
		return ""
	})
}

// rotateSecret gives the endpoint a new secret, shown once; messages
// are signed with the old one too for a day.
func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Clock()
	h.changeEndpoint(w, r, http.StatusOK, func(e *event.Endpoint) string {
		e.Secrets = []string{webhook.NewSecret(), e.Secrets[0]}
		e.RotatedAt = now
		return e.Secrets[0]
	})
}

func (h *Handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	_, err := h.cfg.Service.UpdateAccount(r.Context(), accountFrom(r), func(a *apikey.Account) error {
		n := len(a.Webhooks)
		a.Webhooks = slices.DeleteFunc(a.Webhooks, func(e event.Endpoint) bool { return e.ID == r.PathValue("id") })
		if len(a.Webhooks) == n {
			return errNoEndpoint
		}
		return nil
	})
	if err != nil {
		h.endpointError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": "Webhook endpoint deleted"})
}

// attemptJSON is a delivery attempt as the endpoints show it.
type attemptJSON struct {
	ID      string    `json:"id"`
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Status  string    `json:"status"`
	Code    int       `json:"code,omitempty"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

func showAttempt(a *event.Attempt) attemptJSON {
	return attemptJSON{ID: a.ID, EventID: a.Event.ID, Type: string(a.Event.Type), Status: a.Status, Code: a.Code, Error: a.Error, At: a.At}
}

// deliveries answers GET {webhooks}/{id}/deliveries: the endpoint's
// latest attempts, newest first.
func (h *Handler) deliveries(w http.ResponseWriter, r *http.Request) {
	log := h.cfg.WebhookDeliveries
	if log == nil {
		h.fail(w, r, http.StatusNotImplemented, "unsupported", "This service keeps no delivery log")
		return
	}
	a, err := h.cfg.Service.Account(r.Context(), accountFrom(r))
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !slices.ContainsFunc(a.Webhooks, func(e event.Endpoint) bool { return e.ID == id }) {
		h.endpointError(w, r, errNoEndpoint)
		return
	}
	attempts, err := log.Attempts(r.Context(), accountFrom(r), id)
	if err != nil {
		h.lifecycleError(w, r, err)
		return
	}
	out := make([]attemptJSON, len(attempts))
	for i := range attempts {
		out[i] = showAttempt(&attempts[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "next_cursor": nil})
}

// retryDelivery answers POST {webhooks}/{id}/deliveries/{delivery}/retry:
// the attempt's event sent again now; 200 with the new attempt, whether
// the endpoint took it or not.
func (h *Handler) retryDelivery(w http.ResponseWriter, r *http.Request) {
	sender := h.cfg.WebhookDeliveries
	if sender == nil {
		h.fail(w, r, http.StatusNotImplemented, "unsupported", "This service keeps no delivery log")
		return
	}
	at, err := sender.Replay(r.Context(), accountFrom(r), r.PathValue("id"), r.PathValue("delivery"))
	if errors.Is(err, webhook.ErrNoAttempt) {
		h.fail(w, r, http.StatusNotFound, "not_found", "Webhook endpoint or delivery not found")
		return
	}
	if at.ID == "" {
		h.lifecycleError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, showAttempt(&at))
}
