// Package scanning answers secret-scanning reports: GitHub's secret
// scanning partner program ([Handler]) and GitLab's secret detection
// (its Token Revocation API, [GitLab]) find keys in public code and send
// them here, and each that is an active key of the service is revoked
// (or disabled, or only reported, by environment) at once, with the
// cause in its audit trail and a key.leaked event.
//
// The [Handler] verifies GitHub's signature (ECDSA P-256 over SHA-256 of
// the raw body, Github-Public-Key-Signature, by Github-Public-Key-
// Identifier) against public keys the host supplies: the library makes
// no network call of its own. Fetch them from
// https://api.github.com/meta/public_keys/secret_scanning and pass them
// through [ParseGitHubKeys]. A report without a valid signature, a
// replay of one already handled, one too large or with too many tokens
// changes nothing and is refused. The answer is GitHub's feedback: per
// token its SHA-256 (hex), its type and the label true_positive (an
// active key of this service, now acted on) or false_positive (anything
// else: malformed, unknown, already revoked, disabled or expired).
package scanning

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
)

// Action is what a report does to an active key.
type Action int

// The actions, by environment (see [Config].Actions).
const (
	Revoke  Action = iota // revoke the key: it never verifies again (the default)
	Disable               // disable it: it verifies again once enabled
	Notify                // only record key.leaked
)

// Service is what the handler needs of the key service
// (*apikey.Service).
type Service interface {
	Verify(ctx context.Context, key string) (apikey.Principal, error)
	Revoke(ctx context.Context, owner, id string) error
	Disable(ctx context.Context, owner, id string) (apikey.Key, error)
}

// Config configures a [Handler]. Service and GitHubKeys are required;
// the zero value of every other field selects the default it names.
type Config struct {
	Service Service
	// GitHubKeys are GitHub's public keys by identifier (see
	// [ParseGitHubKeys]).
	GitHubKeys map[string]*ecdsa.PublicKey
	// Facts, when set (the key store, if it records facts), records a
	// key.leaked event per key and place found, once however often it
	// is reported.
	Facts event.Facts
	// Actions maps a key's environment ("live", "test", "" for a format
	// without one) to what a report does to it. Default Revoke.
	Actions map[string]Action
	// MaxBody bounds a report's body. Default 1 MiB.
	MaxBody int64
	// MaxTokens bounds the tokens of one report. Default 1,000.
	MaxTokens int
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
}

// Actor is the actor of the changes a report makes, in the audit trail.
const Actor = "github-secret-scanning"

// Handler answers GitHub's secret-scanning reports. Create one with
// [New].
type Handler struct {
	cfg  Config
	leak leak
	mu   sync.Mutex
	seen map[[32]byte]time.Time // digests of the reports handled, for an hour
}

// replayWindow is how long a report's digest is kept to refuse it again.
const replayWindow = time.Hour

// maxSeen bounds the digests kept; past it the oldest half goes.
const maxSeen = 10_000

// New returns a Handler. It fails without a Service or GitHub's keys.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil || len(cfg.GitHubKeys) == 0 {
		return nil, errors.New("scanning: Config.Service and Config.GitHubKeys are required")
	}
	defaults(&cfg.MaxBody, &cfg.MaxTokens, &cfg.Clock)
	return &Handler{cfg: cfg, seen: map[[32]byte]time.Time{},
		leak: leak{svc: cfg.Service, facts: cfg.Facts, actions: cfg.Actions, clock: cfg.Clock}}, nil
}

// defaults fills in the bounds and clock both handlers share.
func defaults(maxBody *int64, maxTokens *int, clock *func() time.Time) {
	if *maxBody <= 0 {
		*maxBody = 1 << 20
	}
	if *maxTokens <= 0 {
		*maxTokens = 1000
	}
	if *clock == nil {
		*clock = time.Now
	}
}

// ParseGitHubKeys reads GitHub's public keys as
// https://api.github.com/meta/public_keys/secret_scanning serves them:
// {"public_keys":[{"key_identifier","key"(PEM)}]}.
func ParseGitHubKeys(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var doc struct {
		PublicKeys []struct {
			ID  string `json:"key_identifier"`
			Key string `json:"key"`
		} `json:"public_keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("scanning: GitHub's keys: %w", err)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range doc.PublicKeys {
		block, _ := pem.Decode([]byte(k.Key))
		if block == nil {
			return nil, fmt.Errorf("scanning: GitHub's key %q is not PEM", k.ID)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("scanning: GitHub's key %q: %w", k.ID, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("scanning: GitHub's key %q is not ECDSA", k.ID)
		}
		out[k.ID] = ec
	}
	if len(out) == 0 {
		return nil, errors.New("scanning: no keys in GitHub's list")
	}
	return out, nil
}

// report is one token found, as GitHub sends it.
type report struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// feedback is GitHub's answer format, per token.
type feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// ServeHTTP handles one report.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, "POST a report")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a report is at most %d bytes", h.cfg.MaxBody))
		return
	}
	if !h.signed(r.Header, body) {
		fail(w, http.StatusUnauthorized, "the signature does not verify against GitHub's keys")
		return
	}
	var tokens []report
	if err := json.Unmarshal(body, &tokens); err != nil {
		fail(w, http.StatusBadRequest, "a report is a JSON array of {token, type, url, source}")
		return
	}
	if len(tokens) > h.cfg.MaxTokens {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a report holds at most %d tokens", h.cfg.MaxTokens))
		return
	}
	if !h.first(sha256.Sum256(body)) {
		fail(w, http.StatusConflict, "this report was handled already")
		return
	}
	out := make([]feedback, len(tokens))
	for i, t := range tokens {
		sum := sha256.Sum256([]byte(t.Token))
		out[i] = feedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: t.Type, Label: "false_positive"}
		ok, err := h.leak.act(r.Context(), Actor, "github", t.Token, t.URL, t.Source)
		if err != nil {
			// A store that fails: GitHub sends the report again later.
			fail(w, http.StatusServiceUnavailable, "the key store failed; send the report again")
			h.forget(sha256.Sum256(body))
			return
		}
		if ok {
			out[i].Label = "true_positive"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// signed reports whether the report's signature is one of GitHub's keys'.
func (h *Handler) signed(hd http.Header, body []byte) bool {
	pub := h.cfg.GitHubKeys[hd.Get("Github-Public-Key-Identifier")]
	sig, err := base64.StdEncoding.DecodeString(hd.Get("Github-Public-Key-Signature"))
	if pub == nil || err != nil {
		return false
	}
	digest := sha256.Sum256(body)
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}

// first records a report's digest and reports whether it is new.
func (h *Handler) first(digest [32]byte) bool {
	now := h.cfg.Clock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if at, ok := h.seen[digest]; ok && now.Sub(at) < replayWindow {
		return false
	}
	if len(h.seen) >= maxSeen {
		for d, at := range h.seen {
			if now.Sub(at) >= replayWindow/2 {
				delete(h.seen, d)
			}
		}
	}
	if len(h.seen) < maxSeen {
		h.seen[digest] = now
	}
	return true
}

func (h *Handler) forget(digest [32]byte) {
	h.mu.Lock()
	delete(h.seen, digest)
	h.mu.Unlock()
}

// leak is what a report of a key found in public does, whoever found
// it: the core of both handlers.
type leak struct {
	svc     Service
	facts   event.Facts
	actions map[string]Action
	clock   func() time.Time
}

// act acts on one token found by source (as actor) at url and reports
// whether it was an active key; an error is a store failure.
func (l *leak) act(ctx context.Context, actor, source, token, url, foundIn string) (bool, error) {
	p, err := l.svc.Verify(ctx, token)
	switch {
	case errors.Is(err, apikey.ErrMalformed), errors.Is(err, apikey.ErrInvalidKey),
		errors.Is(err, apikey.ErrExpired), errors.Is(err, apikey.ErrNotYetValid):
		return false, nil
	case err != nil:
		return false, err
	}
	key := p.Key()
	ctx = apikey.WithActor(ctx, apikey.Actor{ID: actor})
	switch l.actions[key.Environment] {
	case Revoke:
		err = l.svc.Revoke(ctx, key.Owner, key.ID)
	case Disable:
		_, err = l.svc.Disable(ctx, key.Owner, key.ID)
	}
	if err != nil {
		return false, err
	}
	if l.facts != nil {
		place := sha256.Sum256([]byte(url))
		ev := &event.Event{Type: event.KeyLeaked, KeyID: key.ID, Account: key.Owner, Actor: actor, At: l.clock(),
			Data: map[string]string{"source": source, "url": url, "found_in": foundIn}}
		if _, err := l.facts.Once(ctx, string(event.KeyLeaked)+"/"+key.ID+"/"+hex.EncodeToString(place[:8]), ev); err != nil {
			return false, err
		}
	}
	return true, nil
}
