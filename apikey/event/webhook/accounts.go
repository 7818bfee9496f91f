package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/dispatch"
	"github.com/keygate/keygate/internal/breaker"
)

// AccountsConfig configures an [Accounts] sink. Endpoints is required;
// the zero value of every other field selects the default it names.
type AccountsConfig struct {
	// Endpoints returns an account's endpoints (its
	// apikey.Account.Webhooks).
	Endpoints func(ctx context.Context, account string) ([]event.Endpoint, error)
	// AllowPrivate lets deliveries reach http URLs and loopback or
	// private addresses: local development only.
	AllowPrivate bool
	// OnGone is called for an endpoint that answered 410 Gone, to turn
	// it off (set its DisabledAt). Default: nothing; its events are then
	// dropped, each once.
	OnGone func(ctx context.Context, account, endpoint string)
	// Facts, when set (the key store), records an endpoint.disabled event
	// for an endpoint that answered 410, once.
	Facts event.Facts
	// Log, when set (the key store), keeps every attempt in its
	// endpoint's delivery log, which [Accounts.Replay] sends again from.
	Log event.DeliveryLog
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
}

// Accounts delivers each event to the endpoints its account registered
// that select its type and are on, each signed with the endpoint's own
// secrets, connecting only to public addresses (see [CheckURL]). It is
// a [dispatch.Sink]: when an endpoint fails, the event goes again, to
// the endpoints whose delivery log does not show it delivered (to all
// of them without a Log; receivers drop duplicates by webhook-id). An
// endpoint that failed three times in a row without an answer is
// skipped for half a second (a failure, retried later).
type Accounts struct {
	cfg    AccountsConfig
	client *http.Client
	// breakers skip an endpoint that failed three times in a row (no
	// answer, a timeout) for a moment, so that one dead endpoint does
	// not hold the deliveries to the others for its timeouts.
	breakers breaker.Set
}

var _ dispatch.Sink = (*Accounts)(nil)

// NewAccounts returns an Accounts sink. It fails without Endpoints.
func NewAccounts(cfg AccountsConfig) (*Accounts, error) {
	if cfg.Endpoints == nil {
		return nil, errors.New("webhook: AccountsConfig.Endpoints is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Accounts{cfg: cfg, client: guardedClient(cfg.AllowPrivate)}, nil
}

// Deliver implements [dispatch.Sink].
func (a *Accounts) Deliver(ctx context.Context, e event.Event) error {
	eps, err := a.cfg.Endpoints(ctx, e.Account)
	if err != nil {
		return fmt.Errorf("webhook: the account's endpoints: %w", err)
	}
	var errs []error
	now := a.cfg.Clock()
	for i := range eps {
		ep := &eps[i]
		if !ep.DisabledAt.IsZero() || !ep.Wants(e.Type) || a.delivered(ctx, e.Account, ep.ID, e.ID) {
			continue
		}
		err := a.breakers.Do(ctx, ep.ID, func() error {
			_, err := a.attempt(ctx, ep, e, now)
			return err
		})
		switch {
		case errors.Is(err, dispatch.ErrGone):
			if err := a.turnOff(ctx, e.Account, ep, "gone", now); err != nil {
				errs = append(errs, err)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("endpoint %s: %w", ep.ID, err))
		}
	}
	return errors.Join(errs...)
}

// ErrNoAttempt reports a replay of an attempt the delivery log does not
// hold, or of an endpoint the account does not have.
var ErrNoAttempt = errors.New("webhook: no such endpoint or attempt")

// turnOff records endpoint.disabled for reason, once, then turns ep off
// through OnGone: in that order, so that whoever sees the endpoint off
// finds the event that says why.
func (a *Accounts) turnOff(ctx context.Context, account string, ep *event.Endpoint, reason string, now time.Time) error {
	if a.cfg.Facts != nil {
		ev := &event.Event{Type: event.EndpointDisabled, Account: account, At: now,
			Data: map[string]string{"endpoint": ep.ID, "url": ep.URL, "reason": reason}}
		if _, err := a.cfg.Facts.Once(ctx, string(event.EndpointDisabled)+"/"+account+"/"+ep.ID+"/"+ep.CreatedAt.UTC().Format(time.RFC3339Nano), ev); err != nil {
			return err // not turned off: the next attempt tries again
		}
	}
	if a.cfg.OnGone != nil {
		a.cfg.OnGone(ctx, account, ep.ID)
	}
	return nil
}

// GiveUp turns off the endpoints of e's account that selected e but
// never took it, with endpoint.disabled (reason "failing"): for
// dispatch.Config.OnDrop, when e is dropped past the retry horizon. It
// needs a Log to tell them.
func (a *Accounts) GiveUp(ctx context.Context, e event.Event) {
	if a.cfg.Log == nil {
		return
	}
	eps, err := a.cfg.Endpoints(ctx, e.Account)
	if err != nil {
		return
	}
	now := a.cfg.Clock()
	for i := range eps {
		ep := &eps[i]
		if ep.DisabledAt.IsZero() && ep.Wants(e.Type) && !a.delivered(ctx, e.Account, ep.ID, e.ID) {
			_ = a.turnOff(ctx, e.Account, ep, "failing", now)
		}
	}
}

// delivered reports whether the log shows event id delivered to the
// endpoint already: a retry of an event that another endpoint refused
// goes only to those that did not take it.
func (a *Accounts) delivered(ctx context.Context, account, endpoint, id string) bool {
	if a.cfg.Log == nil {
		return false
	}
	log, err := a.cfg.Log.Attempts(ctx, account, endpoint)
	return err == nil && slices.ContainsFunc(log, func(at event.Attempt) bool {
		return at.Event.ID == id && at.Status == "delivered"
	})
}

// attempt posts e to ep, logs the attempt and returns it. A log that
// fails is not an error of the delivery: the event is not sent again
// for it.
func (a *Accounts) attempt(ctx context.Context, ep *event.Endpoint, e event.Event, now time.Time) (event.Attempt, error) {
	code, err := post(ctx, a.client, ep.URL, ep.Signing(now), e, now)
	var b [12]byte
	_, _ = rand.Read(b[:])
	at := event.Attempt{ID: "dlv_" + hex.EncodeToString(b[:]), Endpoint: ep.ID, Status: "delivered", Code: code, At: now, Event: e}
	if err != nil {
		at.Status, at.Error = "failed", err.Error()
	}
	if a.cfg.Log != nil {
		_ = a.cfg.Log.LogAttempt(ctx, e.Account, &at)
	}
	return at, err
}

// Replay sends the event of the attempt id of account's endpoint again,
// now, to the endpoint as it stands (its URL and secrets), whether or
// not it is on, and logs the new attempt, which it returns; the error
// is the delivery's. It fails with [ErrNoAttempt] for an endpoint or
// attempt that account's does not have, or without a Log.
func (a *Accounts) Replay(ctx context.Context, account, endpoint, id string) (event.Attempt, error) {
	if a.cfg.Log == nil {
		return event.Attempt{}, ErrNoAttempt
	}
	eps, err := a.cfg.Endpoints(ctx, account)
	if err != nil {
		return event.Attempt{}, fmt.Errorf("webhook: the account's endpoints: %w", err)
	}
	i := slices.IndexFunc(eps, func(e event.Endpoint) bool { return e.ID == endpoint })
	if i < 0 {
		return event.Attempt{}, ErrNoAttempt
	}
	log, err := a.cfg.Log.Attempts(ctx, account, endpoint)
	if err != nil {
		return event.Attempt{}, fmt.Errorf("webhook: the delivery log: %w", err)
	}
	j := slices.IndexFunc(log, func(at event.Attempt) bool { return at.ID == id })
	if j < 0 {
		return event.Attempt{}, ErrNoAttempt
	}
	return a.attempt(ctx, &eps[i], log[j].Event, a.cfg.Clock())
}

// Attempts returns the delivery log of account's endpoint, newest first;
// it fails with [ErrNoAttempt] without a Log.
func (a *Accounts) Attempts(ctx context.Context, account, endpoint string) ([]event.Attempt, error) {
	if a.cfg.Log == nil {
		return nil, ErrNoAttempt
	}
	return a.cfg.Log.Attempts(ctx, account, endpoint)
}
