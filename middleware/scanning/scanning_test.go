package scanning_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/middleware/scanning"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/sqlstore"
)

// github stands in for GitHub: a signing key, published as GitHub
// publishes its keys.
type github struct {
	priv *ecdsa.PrivateKey
	keys map[string]*ecdsa.PublicKey
}

func newGitHub(t testing.TB) *github {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	doc, err := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": "gh-1", "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true,
	}}})
	require.NoError(t, err)
	keys, err := scanning.ParseGitHubKeys(doc)
	require.NoError(t, err)
	return &github{priv: priv, keys: keys}
}

type token struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// report returns a signed report of tokens, as GitHub sends one.
func (g *github) report(t testing.TB, tokens ...string) *http.Request {
	var list []token
	for i, tok := range tokens {
		list = append(list, token{Token: tok, Type: "keygate_api_key", URL: fmt.Sprintf("https://github.com/octo/repo/blob/abc/config%d.env", i), Source: "content"})
	}
	body, err := json.Marshal(list)
	require.NoError(t, err)
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, g.priv, digest[:])
	require.NoError(t, err)
	r := httptest.NewRequest("POST", "/secret-scanning", bytes.NewReader(body))
	r.Header.Set("Github-Public-Key-Identifier", "gh-1")
	r.Header.Set("Github-Public-Key-Signature", base64.StdEncoding.EncodeToString(sig))
	return r
}

// instance is one instance of a service: its own cache in front of a
// shared SQL store.
func instance(t *testing.T, dsn string) (*apikey.Service, *sqlstore.Store) {
	ctx := context.Background()
	s, err := sqlstore.New(ctx, sqltest.Open(t, "sqlite", dsn), sqlstore.Config{Dialect: sqlstore.SQLite, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	cache, err := cachestore.New(s, cachestore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	svc, err := apikey.New(cache, apikey.Config{})
	require.NoError(t, err)
	return svc, s
}

// A signed report revokes the key on one instance, and another instance
// refuses it within its invalidation bound; the key's trail says who and
// why; the answer labels each token.
func TestReportRevokesEverywhere(t *testing.T) {
	ctx := context.Background()
	db, dsn := sqltest.Fresh(t, sqlstore.SQLite)
	require.NoError(t, sqlstore.Migrate(ctx, db, sqlstore.SQLite))
	a, store := instance(t, dsn)
	b, _ := instance(t, dsn)
	leaked, err := a.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	kept, err := a.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	_, err = b.Verify(ctx, leaked.Secret.Reveal()) // cached on b
	require.NoError(t, err)

	gh := newGitHub(t)
	h, err := scanning.New(scanning.Config{Service: a, GitHubKeys: gh.keys, Facts: store})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, gh.report(t, leaked.Secret.Reveal(), "kg_live_notakey", "ghp_somethingelse"))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var answer []map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &answer))
	require.Len(t, answer, 3)
	sum := sha256.Sum256([]byte(leaked.Secret.Reveal()))
	assert.Equal(t, fmt.Sprintf("%x", sum), answer[0]["token_hash"])
	assert.Equal(t, []string{"true_positive", "false_positive", "false_positive"}, []string{answer[0]["label"], answer[1]["label"], answer[2]["label"]})
	assert.NotContains(t, w.Body.String(), leaked.Secret.Reveal())

	_, err = a.Verify(ctx, leaked.Secret.Reveal())
	assert.ErrorIs(t, err, apikey.ErrInvalidKey)
	require.Eventually(t, func() bool {
		_, err := b.Verify(ctx, leaked.Secret.Reveal())
		return err != nil
	}, 10*time.Second, 10*time.Millisecond, "the other instance refuses the key")
	_, err = b.Verify(ctx, kept.Secret.Reveal())
	assert.NoError(t, err, "a key not reported still works")

	trail, err := a.Events(ctx, "acct_1", leaked.Key.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, trail.Items, 3)
	assert.Equal(t, event.KeyLeaked, trail.Items[0].Type)
	assert.Equal(t, "github", trail.Items[0].Data["source"])
	assert.Equal(t, "https://github.com/octo/repo/blob/abc/config0.env", trail.Items[0].Data["url"])
	assert.Equal(t, event.KeyRevoked, trail.Items[1].Type)
	assert.Equal(t, scanning.Actor, trail.Items[1].Actor)
	for _, e := range trail.Items {
		raw, _ := json.Marshal(e)
		assert.NotContains(t, string(raw), leaked.Secret.Reveal())
	}
}

// A forged, replayed, oversized or overfull report changes nothing and
// is refused.
func TestBadReportsChangeNothing(t *testing.T) {
	ctx := context.Background()
	db, dsn := sqltest.Fresh(t, sqlstore.SQLite)
	require.NoError(t, sqlstore.Migrate(ctx, db, sqlstore.SQLite))
	svc, _ := instance(t, dsn)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	gh, forger := newGitHub(t), newGitHub(t)
	h, err := scanning.New(scanning.Config{Service: svc, GitHubKeys: gh.keys, MaxTokens: 100, MaxBody: 64 << 10})
	require.NoError(t, err)
	serve := func(r *http.Request) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	key := issued.Secret.Reveal()
	forged := forger.report(t, key)
	assert.Equal(t, http.StatusUnauthorized, serve(forged), "signed by another key")
	unsigned := gh.report(t, key)
	unsigned.Header.Del("Github-Public-Key-Signature")
	assert.Equal(t, http.StatusUnauthorized, serve(unsigned))
	unknown := gh.report(t, key)
	unknown.Header.Set("Github-Public-Key-Identifier", "gh-2")
	assert.Equal(t, http.StatusUnauthorized, serve(unknown))
	tampered := gh.report(t, key)
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(tampered.Body)
	tampered.Body = http.NoBody
	tampered2 := httptest.NewRequest("POST", "/", strings.NewReader(strings.Replace(body.String(), "config0", "config9", 1)))
	tampered2.Header = tampered.Header
	assert.Equal(t, http.StatusUnauthorized, serve(tampered2), "a body changed after signing")
	many := make([]string, 101)
	for i := range many {
		many[i] = "kg_live_x"
	}
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(gh.report(t, many...)))
	big := gh.report(t, strings.Repeat("x", 70<<10))
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(big))
	get := httptest.NewRequest("GET", "/", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, serve(get))
	_, err = svc.Verify(ctx, key)
	require.NoError(t, err, "nothing above touched the key")

	// A replay of a report handled is refused; the key it revoked stays
	// revoked, and nothing else changes.
	r := gh.report(t, key)
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(r.Body)
	replay := func() *http.Request {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(raw.Bytes()))
		req.Header = r.Header.Clone()
		return req
	}
	assert.Equal(t, http.StatusOK, serve(replay()))
	assert.Equal(t, http.StatusConflict, serve(replay()))
}

// A key whose environment is set to Notify is only reported.
func TestNotifyOnly(t *testing.T) {
	ctx := context.Background()
	db, dsn := sqltest.Fresh(t, sqlstore.SQLite)
	require.NoError(t, sqlstore.Migrate(ctx, db, sqlstore.SQLite))
	svc, store := instance(t, dsn)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	gh := newGitHub(t)
	h, err := scanning.New(scanning.Config{Service: svc, GitHubKeys: gh.keys, Facts: store, Actions: map[string]scanning.Action{issued.Key.Environment: scanning.Notify}})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, gh.report(t, issued.Secret.Reveal()))
	require.Equal(t, http.StatusOK, w.Code)
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	assert.NoError(t, err)
	trail, err := svc.Events(ctx, "acct_1", issued.Key.ID, "", 10)
	require.NoError(t, err)
	assert.Equal(t, event.KeyLeaked, trail.Items[0].Type)
}

// BenchmarkReport answers a signed report of 1,000 tokens, ten of them
// active keys (revoked by the first run), on SQLite behind the cache.
func BenchmarkReport(b *testing.B) {
	ctx := context.Background()
	db, dsn := sqltest.Fresh(b, sqlstore.SQLite)
	require.NoError(b, sqlstore.Migrate(ctx, db, sqlstore.SQLite))
	s, err := sqlstore.New(ctx, sqltest.Open(b, "sqlite", dsn), sqlstore.Config{Dialect: sqlstore.SQLite})
	require.NoError(b, err)
	svc, err := apikey.New(s, apikey.Config{})
	require.NoError(b, err)
	gh := newGitHub(b)
	var tokens []string
	for i := range 1000 {
		if i%100 == 0 {
			issued, err := svc.Create(ctx, apikey.CreateParams{Owner: fmt.Sprint("acct_", i)})
			require.NoError(b, err)
			tokens = append(tokens, issued.Secret.Reveal())
			continue
		}
		tokens = append(tokens, fmt.Sprintf("kg_live_unknown%04d", i))
	}
	h, err := scanning.New(scanning.Config{Service: svc, GitHubKeys: gh.keys, Facts: s})
	require.NoError(b, err)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		tokens[1] = fmt.Sprint("kg_live_run", n) // a report of its own: a replay is refused
		r := gh.report(b, tokens...)
		b.StartTimer()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// GitLab's Token Revocation API: the token types, then a revocation
// that revokes the active key among the tokens; without the API's token,
// with an unknown type or too many tokens, nothing changes.
func TestGitLabRevocation(t *testing.T) {
	ctx := context.Background()
	db, dsn := sqltest.Fresh(t, sqlstore.SQLite)
	require.NoError(t, sqlstore.Migrate(ctx, db, sqlstore.SQLite))
	svc, store := instance(t, dsn)
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_1"})
	require.NoError(t, err)
	g, err := scanning.NewGitLab(scanning.GitLabConfig{Service: svc, Token: "gl-secret", Facts: store, MaxTokens: 10})
	require.NoError(t, err)
	serve := func(method, path, auth, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	w := serve("GET", "/gitlab/v1/revocable_token_types", "Bearer gl-secret", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"types":["keygate_api_key"]}`, w.Body.String())

	report := `[{"type":"keygate_api_key","token":"` + issued.Secret.Reveal() + `","location":"https://gitlab.com/o/r/-/blob/abc/.env#L2"},{"type":"keygate_api_key","token":"kg_live_nope","location":"x"}]`
	assert.Equal(t, http.StatusUnauthorized, serve("POST", "/gitlab/v1/revoke_tokens", "Bearer wrong", report).Code)
	assert.Equal(t, http.StatusUnauthorized, serve("POST", "/gitlab/v1/revoke_tokens", "", report).Code)
	assert.Equal(t, http.StatusBadRequest, serve("POST", "/gitlab/v1/revoke_tokens", "gl-secret", `[{"type":"other","token":"x","location":"y"}]`).Code)
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve("POST", "/gitlab/v1/revoke_tokens", "gl-secret", "["+strings.Repeat(`{"type":"keygate_api_key","token":"x","location":"y"},`, 10)+`{"type":"keygate_api_key","token":"x","location":"y"}]`).Code)
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	require.NoError(t, err, "nothing above touched the key")

	assert.Equal(t, http.StatusNoContent, serve("POST", "/gitlab/v1/revoke_tokens", "gl-secret", report).Code)
	_, err = svc.Verify(ctx, issued.Secret.Reveal())
	assert.ErrorIs(t, err, apikey.ErrInvalidKey)
	trail, err := svc.Events(ctx, "acct_1", issued.Key.ID, "", 10)
	require.NoError(t, err)
	assert.Equal(t, event.KeyLeaked, trail.Items[0].Type)
	assert.Equal(t, "gitlab", trail.Items[0].Data["source"])
	assert.Equal(t, scanning.GitLabActor, trail.Items[1].Actor)
	assert.Equal(t, http.StatusNoContent, serve("POST", "/gitlab/v1/revoke_tokens", "gl-secret", report).Code, "idempotent")
}
