package scanning

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/event"
)

// GitLabActor is the actor of the changes a GitLab report makes.
const GitLabActor = "gitlab-secret-detection"

// GitLabConfig configures a [GitLab] handler. Service and Token are
// required; the zero value of every other field selects the default it
// names.
type GitLabConfig struct {
	Service Service
	// Token authenticates GitLab: the token configured in GitLab for the
	// revocation API, sent in the Authorization header (as it is, or
	// after "Bearer ").
	Token string
	// Types are the token types this service revokes, as GitLab's
	// secret detection names them. Default "keygate_api_key".
	Types []string
	// Facts, Actions, MaxBody, MaxTokens and Clock are as [Config]'s.
	Facts     event.Facts
	Actions   map[string]Action
	MaxBody   int64
	MaxTokens int
	Clock     func() time.Time
}

// GitLab answers GitLab's Token Revocation API, which GitLab's secret
// detection calls with the keys it finds: GET {prefix}/v1/revocable_token_types
// and POST {prefix}/v1/revoke_tokens ([{"type","token","location"}], 204
// once every active key among them is acted on as [Handler] does). A
// request without the token, or with a body or token count over the
// caps, changes nothing and is refused; a store that fails answers 500,
// and GitLab sends the tokens again (revoking twice changes nothing).
type GitLab struct {
	cfg  GitLabConfig
	leak leak
}

// NewGitLab returns a GitLab handler. It fails without a Service or a
// Token.
func NewGitLab(cfg GitLabConfig) (*GitLab, error) {
	if cfg.Service == nil || cfg.Token == "" {
		return nil, errors.New("scanning: GitLabConfig.Service and GitLabConfig.Token are required")
	}
	if len(cfg.Types) == 0 {
		cfg.Types = []string{"keygate_api_key"}
	}
	defaults(&cfg.MaxBody, &cfg.MaxTokens, &cfg.Clock)
	return &GitLab{cfg: cfg, leak: leak{svc: cfg.Service, facts: cfg.Facts, actions: cfg.Actions, clock: cfg.Clock}}, nil
}

// ServeHTTP answers the two endpoints, by the end of the path.
func (g *GitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(auth), []byte(g.cfg.Token)) != 1 {
		fail(w, http.StatusUnauthorized, "the Authorization header does not carry the revocation API's token")
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/v1/revocable_token_types"):
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			fail(w, http.StatusMethodNotAllowed, "GET the token types")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string][]string{"types": g.cfg.Types})
	case strings.HasSuffix(r.URL.Path, "/v1/revoke_tokens"):
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(w, http.StatusMethodNotAllowed, "POST the tokens")
			return
		}
		g.revoke(w, r)
	default:
		fail(w, http.StatusNotFound, "not an endpoint of the revocation API")
	}
}

func (g *GitLab) revoke(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a request is at most %d bytes", g.cfg.MaxBody))
		return
	}
	var tokens []struct {
		Type     string `json:"type"`
		Token    string `json:"token"`
		Location string `json:"location"`
	}
	if err := json.Unmarshal(body, &tokens); err != nil {
		fail(w, http.StatusBadRequest, "a request is a JSON array of {type, token, location}")
		return
	}
	if len(tokens) > g.cfg.MaxTokens {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a request holds at most %d tokens", g.cfg.MaxTokens))
		return
	}
	for _, t := range tokens {
		if !slices.Contains(g.cfg.Types, t.Type) {
			fail(w, http.StatusBadRequest, fmt.Sprintf("%q is not a token type of this service", t.Type))
			return
		}
	}
	for _, t := range tokens {
		if _, err := g.leak.act(r.Context(), GitLabActor, "gitlab", t.Token, t.Location, "content"); err != nil {
			fail(w, http.StatusInternalServerError, "the key store failed; send the tokens again")
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
