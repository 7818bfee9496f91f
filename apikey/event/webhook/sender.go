package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/dispatch"
)

// SenderConfig configures a [Sender]. URL and Secrets are required; the
// zero value of every other field selects the default it names.
type SenderConfig struct {
	// URL receives the messages, by POST: http or https.
	URL string
	// Secrets sign every message, one signature each: the new secret
	// first while a secret rotates, then the old one until receivers
	// have moved.
	Secrets []string
	// Client sends the messages. Default: an http.Client that follows no
	// redirect and gives a receiver 10 seconds.
	Client *http.Client
	// Clock returns the current time, for webhook-timestamp. Default
	// [time.Now].
	Clock func() time.Time
}

// Sender delivers events to one receiver as Standard Webhooks messages:
// the event's JSON as the body, [MessageID] as webhook-id (the same on
// every retry), signed with every secret. It is a [dispatch.Sink]: a 2xx
// answer delivers, 410 Gone is [dispatch.ErrGone], anything else (or no
// answer) is an error and the event goes again.
type Sender struct {
	cfg SenderConfig
}

var _ dispatch.Sink = (*Sender)(nil)

// NewSender returns a Sender. It fails for a URL that is not absolute
// http or https, and with [ErrInvalidSecret] for no secret or a bad one.
func NewSender(cfg SenderConfig) (*Sender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: URL %q is not an absolute http or https URL", cfg.URL)
	}
	if _, err := Sign("msg", time.Unix(0, 0), nil, cfg.Secrets...); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: 10 * time.Second,
			// A redirect would send the signed event where nobody
			// configured it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Sender{cfg: cfg}, nil
}

// Deliver implements [dispatch.Sink].
func (s *Sender) Deliver(ctx context.Context, e event.Event) error {
	_, err := post(ctx, s.cfg.Client, s.cfg.URL, s.cfg.Secrets, e, s.cfg.Clock())
	return err
}

// post sends e to url with client, signed with secrets at at, and
// returns the answer's status (0 for none): nil for a 2xx answer,
// [dispatch.ErrGone] for 410, an error otherwise.
func post(ctx context.Context, client *http.Client, url string, secrets []string, e event.Event, at time.Time) (int, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("webhook: encode the event: %w", err)
	}
	id := MessageID(&e)
	sig, err := Sign(id, at, body, secrets...)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(at.Unix()))
	req.Header.Set(HeaderSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook: %w", err)
	}
	// Read a little of the answer, so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode == http.StatusGone:
		return resp.StatusCode, fmt.Errorf("%w: the receiver answered 410 Gone", dispatch.ErrGone)
	}
	return resp.StatusCode, errors.New("webhook: the receiver answered " + resp.Status)
}

// MessageID returns the webhook-id of e's messages: "msg_" and the
// base64url of the first 16 bytes of SHA-256 over its account and ID. The
// same on every attempt, so that a receiver drops a retry it handled;
// unique across accounts, whose event IDs a store may number each on
// their own.
func MessageID(e *event.Event) string {
	sum := sha256.Sum256([]byte(e.Account + "\x00" + e.ID))
	return "msg_" + base64.RawURLEncoding.EncodeToString(sum[:16])
}
