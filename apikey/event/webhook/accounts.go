package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/dispatch"
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
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
}

// Accounts delivers each event to the endpoints its account registered
// that select its type and are on, each signed with the endpoint's own
// secrets, connecting only to public addresses (see [CheckURL]). It is
// a [dispatch.Sink]: when an endpoint fails, the event goes again to
// every endpoint, which drop what they had by its webhook-id.
type Accounts struct {
	cfg    AccountsConfig
	client *http.Client
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
		if !ep.DisabledAt.IsZero() || !ep.Wants(e.Type) {
			continue
		}
		err := post(ctx, a.client, ep.URL, ep.Signing(now), e, now)
		switch {
		case errors.Is(err, dispatch.ErrGone):
			if a.cfg.OnGone != nil {
				a.cfg.OnGone(ctx, e.Account, ep.ID)
			}
			if a.cfg.Facts != nil {
				ev := &event.Event{Type: event.EndpointDisabled, Account: e.Account, At: now,
					Data: map[string]string{"endpoint": ep.ID, "url": ep.URL, "reason": "gone"}}
				if _, err := a.cfg.Facts.Once(ctx, string(event.EndpointDisabled)+"/"+e.Account+"/"+ep.ID+"/"+ep.CreatedAt.UTC().Format(time.RFC3339Nano), ev); err != nil {
					errs = append(errs, err)
				}
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("endpoint %s: %w", ep.ID, err))
		}
	}
	return errors.Join(errs...)
}
