package event

import (
	"context"
	"strings"
	"time"
)

// MaxEndpoints bounds the webhook endpoints of one account.
const MaxEndpoints = 10

// Endpoint is a webhook an account registered to hear of its own keys'
// events. It is kept in its account (apikey.Account.Webhooks), so every
// store that keeps accounts keeps it; apikey/event/webhook delivers to
// it.
type Endpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Events selects the event types delivered: a type ("key.revoked")
	// or a prefix and "*" ("key.*"); none selects every type.
	Events      []string `json:"events,omitempty"`
	Description string   `json:"description,omitempty"`
	// Secrets sign its messages: the current secret first, and for a day
	// after a rotation (RotatedAt) the previous one too.
	Secrets   []string  `json:"secrets"`
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// DisabledAt, when set, is when deliveries stopped: the account
	// turned it off, or it answered 410 Gone.
	DisabledAt time.Time `json:"disabled_at,omitzero"`
	CreatedAt  time.Time `json:"created_at"`
}

// Wants reports whether e selects events of type t.
func (e *Endpoint) Wants(t Type) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, f := range e.Events {
		if f == string(t) || strings.HasSuffix(f, "*") && strings.HasPrefix(string(t), strings.TrimSuffix(f, "*")) {
			return true
		}
	}
	return false
}

// Signing returns the secrets e's messages are signed with at now: the
// current one, and the previous one for a day after a rotation.
func (e *Endpoint) Signing(now time.Time) []string {
	if len(e.Secrets) > 1 && now.Sub(e.RotatedAt) < 24*time.Hour {
		return e.Secrets[:2]
	}
	return e.Secrets[:min(len(e.Secrets), 1)]
}

// MaxAttempts is how many delivery attempts a [DeliveryLog] keeps per
// endpoint: the latest.
const MaxAttempts = 100

// Attempt is one attempt to deliver an event to an account's endpoint,
// as its delivery log keeps it. The event is kept with it, so that it
// can be sent again.
type Attempt struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	// Status is "delivered" (a 2xx answer) or "failed".
	Status string `json:"status"`
	// Code is the answer's HTTP status; 0 when there was none, and then
	// Error says why.
	Code  int       `json:"code,omitempty"`
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
	Event Event     `json:"event"`
}

// DeliveryLog is the optional capability of a key store that keeps, per
// account endpoint, its latest [MaxAttempts] delivery attempts.
// store/storetest checks it.
type DeliveryLog interface {
	// LogAttempt adds a to the log of its account's endpoint
	// a.Endpoint, dropping the oldest past [MaxAttempts].
	LogAttempt(ctx context.Context, account string, a *Attempt) error
	// Attempts returns the log of account's endpoint, newest first.
	Attempts(ctx context.Context, account, endpoint string) ([]Attempt, error)
}
