package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/internal/redistest"
	"github.com/keygate/keygate/internal/testclock"
)

const testToken = "admin_test_token"

type env struct {
	t     *testing.T
	url   string
	clock *testclock.Clock
}

// start serves the reference service on the memory store, or on the test
// Redis in a namespace of its own.
func start(t *testing.T, store string) *env {
	c := testclock.New(time.Now().Truncate(time.Second))
	cfg := serverConfig{Namespace: "kgtest-srv", AdminToken: testToken, Clock: c.Now, Retention: 90 * 24 * time.Hour}
	switch store {
	case "memory":
		cfg.Memory = true
	case "redis":
		cfg.RedisURL = redistest.URL()
		cfg.Namespace = redistest.Name(t, redistest.Client(t), "srv")
	case "cluster", "cluster+local":
		cfg.LocalLimiter = store == "cluster+local"
		cluster := redistest.Cluster(t)
		var seeds []string
		for _, addr := range cluster.Options().Addrs {
			seeds = append(seeds, "redis://"+addr)
		}
		cfg.RedisURL = strings.Join(seeds, ",")
		cfg.Namespace = redistest.Name(t, cluster, "srv")
	default:
		cfg.DataDir = t.TempDir()
	}
	srv, err := newServer(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Close()
	})
	return &env{t: t, url: ts.URL, clock: c}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(method, path string, headers map[string]string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	require.NoError(e.t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func admin(account string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + testToken, "X-Account-ID": account}
}

func bearer(key string) map[string]string  { return map[string]string{"Authorization": "Bearer " + key} }
func xAPIKey(key string) map[string]string { return map[string]string{"X-API-Key": key} }

func (e *env) create(account string, body map[string]any) (id, key string) {
	e.t.Helper()
	r := e.do("POST", "/api/v1/api-keys", admin(account), body)
	require.Equal(e.t, http.StatusCreated, r.status, r.raw)
	return r.body["id"].(string), r.body["api_key"].(string)
}

func TestReferenceServiceMemory(t *testing.T) { walkSeedFlows(t, start(t, "memory")) }

func TestReferenceServiceSQLite(t *testing.T) { walkSeedFlows(t, start(t, "sqlite")) }

func TestEmptyAdminTokenIsRefused(t *testing.T) {
	_, err := newServer(serverConfig{})
	require.Error(t, err)
}

func TestReferenceServiceRedis(t *testing.T) { walkSeedFlows(t, start(t, "redis")) }

// REDIS_URL as a comma list of a Cluster's nodes.
func TestReferenceServiceRedisCluster(t *testing.T) { walkSeedFlows(t, start(t, "cluster")) }

// LIMITER=local keeps every promise: the seed plans' windows are small
// enough to stay exact, and the rest is the same service.
func TestReferenceServiceLocalLimiter(t *testing.T) { walkSeedFlows(t, start(t, "cluster+local")) }

// walkSeedFlows exercises every promise of the seed documents end to end.
func walkSeedFlows(t *testing.T, e *env) {
	rw := map[string]any{"name": "Backend", "permissions": []string{"read", "write"}, "plan": "business"}

	t.Run("create shows the key once; list and get never do", func(t *testing.T) {
		r := e.do("POST", "/api/v1/api-keys", admin("acct_a"), map[string]any{
			"name": "Production", "description": "Production API key", "permissions": []string{"read"},
			"environment": "live", "plan": "free",
		})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		key := r.body["api_key"].(string)
		assert.True(t, strings.HasPrefix(key, "kg_live_"))
		assert.Equal(t, key[:14], r.body["key_prefix"])
		for _, field := range []string{"id", "name", "description", "permissions", "project_id", "environment", "plan", "created_at", "expires_at"} {
			assert.Contains(t, r.body, field)
		}
		list := e.do("GET", "/api/v1/api-keys", admin("acct_a"), nil)
		require.Equal(t, http.StatusOK, list.status)
		assert.NotContains(t, list.raw, key[14:], "the list never shows the key")
		assert.NotContains(t, list.raw, "api_key")
		assert.Contains(t, list.raw, `"status":"active"`)
		one := e.do("GET", "/api/v1/api-keys/"+r.body["id"].(string), admin("acct_a"), nil)
		require.Equal(t, http.StatusOK, one.status)
		assert.NotContains(t, one.raw, key[14:])
		assert.Equal(t, http.StatusNotFound, e.do("GET", "/api/v1/api-keys/"+r.body["id"].(string), admin("acct_b"), nil).status,
			"another account's key is not found")
	})

	t.Run("use with both headers", func(t *testing.T) {
		_, key := e.create("acct_h", rw)
		for _, h := range []map[string]string{bearer(key), xAPIKey(key), {"Authorization": "bearer " + key}} {
			r := e.do("GET", "/api/v1/health", h, nil)
			assert.Equal(t, http.StatusOK, r.status, r.raw)
			assert.Equal(t, "ok", r.body["status"])
			// The key's business plan is a cap within its account's free
			// plan, which binds.
			assert.Equal(t, "10", r.header.Get("X-RateLimit-Limit"))
		}
		r := e.do("POST", "/api/v1/recordings", xAPIKey(key), map[string]string{"title": "call"})
		assert.Equal(t, http.StatusCreated, r.status, r.raw)
	})

	t.Run("401 for missing, invalid, revoked and expired keys", func(t *testing.T) {
		id, key := e.create("acct_401", rw)
		_, expiring := e.create("acct_401", map[string]any{"permissions": []string{"read"}, "expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)})
		require.NoError(t, nil)
		r := e.do("DELETE", "/api/v1/api-keys/"+id, admin("acct_401"), nil)
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, true, r.body["success"])
		assert.Equal(t, "API key revoked successfully", r.body["message"])
		e.clock.Advance(2 * time.Hour)
		defer e.clock.Advance(-2 * time.Hour)
		cases := map[string]map[string]string{
			"missing":          nil,
			"garbage":          bearer("not-a-key"),
			"typo":             bearer(typo(key)),
			"revoked":          bearer(key),
			"expired":          bearer(expiring),
			"bearer, no key":   {"Authorization": "Bearer"},
			"basic auth":       {"Authorization": "Basic dXNlcjpwYXNz"},
			"two keys":         {"Authorization": "Bearer " + expiring, "X-API-Key": key},
			"1 MB header":      {"X-API-Key": strings.Repeat("k", 1<<20-1024)},
			"key in the query": nil,
		}
		for name, h := range cases {
			path := "/api/v1/health"
			if name == "key in the query" {
				path += "?api_key=" + key
			}
			r := e.do("GET", path, h, nil)
			assert.Equal(t, http.StatusUnauthorized, r.status, name)
			assert.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer", name)
			if name != "key in the query" {
				assert.Equal(t, "Invalid or expired API key", r.body["error"], name)
			}
			assert.NotContains(t, r.raw, key[14:], name)
		}
	})

	t.Run("403 names the missing permission", func(t *testing.T) {
		_, writeOnly := e.create("acct_perm", map[string]any{"permissions": []string{"write"}})
		r := e.do("GET", "/api/v1/recordings", bearer(writeOnly), nil)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "Read permission required", r.body["error"])
		r = e.do("DELETE", "/api/v1/recordings/rec_1", bearer(writeOnly), nil)
		assert.Equal(t, "Delete permission required", r.body["error"])
		_, readOnly := e.create("acct_perm", map[string]any{"permissions": []string{"read"}})
		r = e.do("POST", "/api/v1/recordings", bearer(readOnly), map[string]string{"title": "x"})
		assert.Equal(t, "Write permission required", r.body["error"])
	})

	t.Run("a project-scoped key only reaches its project", func(t *testing.T) {
		_, key := e.create("acct_proj", map[string]any{"permissions": []string{"read"}, "project_id": "proj_1"})
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/projects/proj_1/recordings", bearer(key), nil).status)
		r := e.do("GET", "/api/v1/projects/proj_2/recordings", bearer(key), nil)
		assert.Equal(t, http.StatusForbidden, r.status)
		assert.Equal(t, "API key is not valid for this project", r.body["error"])
	})

	t.Run("the free plan's 11th request in a minute gets 429", func(t *testing.T) {
		_, key := e.create("acct_rl", map[string]any{"permissions": []string{"read"}, "plan": "free"})
		for i := range 10 {
			r := e.do("GET", "/api/v1/recordings", bearer(key), nil)
			require.Equal(t, http.StatusOK, r.status, "request %d", i+1)
			assert.Equal(t, "10", r.header.Get("X-RateLimit-Limit"))
			assert.NotEmpty(t, r.header.Get("X-RateLimit-Reset"))
		}
		r := e.do("GET", "/api/v1/recordings", bearer(key), nil)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "Rate limit exceeded", r.body["error"])
		assert.Positive(t, r.body["retry_after"])
		assert.NotEmpty(t, r.header.Get("Retry-After"))
		assert.Equal(t, "0", r.header.Get("X-RateLimit-Remaining"))
	})

	t.Run("limits follow the account: plan, Enterprise override, credits", func(t *testing.T) {
		_, k1 := e.create("acct_plan", map[string]any{"permissions": []string{"read"}})
		_, k2 := e.create("acct_plan", map[string]any{"permissions": []string{"read"}})
		r := e.do("GET", "/api/v1/account", admin("acct_plan"), nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		assert.Equal(t, "free", r.body["plan"], "new accounts are on the free plan")
		for i := range 10 { // the account's 10 a minute, across its keys
			key := k1
			if i%2 == 1 {
				key = k2
			}
			require.Equal(t, http.StatusOK, e.do("GET", "/api/v1/recordings", bearer(key), nil).status, "request %d", i+1)
		}
		require.Equal(t, http.StatusTooManyRequests, e.do("GET", "/api/v1/recordings", bearer(k2), nil).status)

		// An Enterprise contract: custom limits, seen at once by the keys.
		r = e.do("PUT", "/api/v1/account", admin("acct_plan"), `{"limits":[{"limit":1000,"period_seconds":60},{"limit":1000000,"period_seconds":86400}]}`)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		assert.Equal(t, 990.0, r.body["limits"].([]any)[0].(map[string]any)["remaining"], "what was spent carries over")
		eventually(t, time.Minute, func() bool {
			r := e.do("GET", "/api/v1/recordings", bearer(k1), nil)
			return r.status == http.StatusOK && r.header.Get("X-RateLimit-Limit") == "1000"
		})

		// Credits: 3, no refill; the fourth request is over quota.
		r = e.do("PUT", "/api/v1/account", admin("acct_plan"), `{"credits":{"balance":3}}`)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		var last response
		eventually(t, time.Minute, func() bool {
			last = e.do("GET", "/api/v1/recordings", bearer(k2), nil)
			return last.status == http.StatusTooManyRequests
		})
		assert.Equal(t, "Quota exceeded", last.body["error"])
		r = e.do("GET", "/api/v1/account", admin("acct_plan"), nil)
		assert.Equal(t, 0.0, r.body["credits"].(map[string]any)["balance"])
		r = e.do("PUT", "/api/v1/account", admin("acct_plan"), `{"credits":null,"limits":[]}`)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		assert.Nil(t, r.body["credits"])
	})

	t.Run("rotate with and without grace", func(t *testing.T) {
		id, old := e.create("acct_rot", rw)
		r := e.do("POST", "/api/v1/api-keys/"+id+"/rotate", admin("acct_rot"), map[string]int{"grace_period_seconds": 3600})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		newID, next := r.body["id"].(string), r.body["api_key"].(string)
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/health", bearer(old), nil).status, "the old key lives through the grace period")
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/health", bearer(next), nil).status)

		r = e.do("POST", "/api/v1/api-keys/"+newID+"/rotate", admin("acct_rot"), nil)
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		assert.Equal(t, http.StatusUnauthorized, e.do("GET", "/api/v1/health", bearer(next), nil).status, "without grace the old key dies now")
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/health", bearer(r.body["api_key"].(string)), nil).status)
	})

	t.Run("usage counts by endpoint, errors included", func(t *testing.T) {
		id, key := e.create("acct_use", map[string]any{"permissions": []string{"read"}, "plan": "business"})
		e.do("GET", "/api/v1/recordings", bearer(key), nil)
		e.do("GET", "/api/v1/recordings", xAPIKey(key), nil)
		e.do("GET", "/api/v1/recordings/rec_404", bearer(key), nil)
		e.do("POST", "/api/v1/recordings", bearer(key), map[string]string{}) // 403
		r := e.do("GET", "/api/v1/api-keys/"+id+"/usage", admin("acct_use"), nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		assert.EqualValues(t, 4, r.body["total_requests"])
		assert.EqualValues(t, 2, r.body["errors"])
		assert.InDelta(t, 0.5, r.body["error_rate"], 1e-9)
		assert.Equal(t, map[string]any{
			"GET /api/v1/recordings": 2.0, "GET /api/v1/recordings/{id}": 1.0, "POST /api/v1/recordings": 1.0,
		}, r.body["by_endpoint"])
		assert.NotNil(t, r.body["last_used_at"])
		one := e.do("GET", "/api/v1/api-keys/"+id, admin("acct_use"), nil)
		assert.Equal(t, r.body["last_used_at"], one.body["last_used_at"], "the key shows its last use")
	})

	t.Run("management refuses bad input and API keys", func(t *testing.T) {
		_, key := e.create("acct_bad", rw)
		cases := []struct {
			name    string
			headers map[string]string
			body    any
			status  int
			msg     string
		}{
			{"an API key", bearer(key), map[string]any{}, 401, "API keys cannot manage API keys"},
			{"an API key in X-API-Key", map[string]string{"X-API-Key": key, "Authorization": "Bearer " + testToken}, map[string]any{}, 401, "API keys cannot manage API keys"},
			{"no login", nil, map[string]any{}, 401, "Could not validate credentials"},
			{"garbage JSON", admin("acct_bad"), "{nope", 400, "invalid JSON"},
			{"unknown field", admin("acct_bad"), map[string]any{"nmae": "typo"}, 400, "unknown field"},
			{"description of 501", admin("acct_bad"), map[string]any{"description": strings.Repeat("d", 501)}, 400, "description"},
			{"unknown permission", admin("acct_bad"), map[string]any{"permissions": []string{"admin"}}, 400, "permissions"},
			{"expiry in the past", admin("acct_bad"), map[string]any{"expires_at": "2000-01-01T00:00:00Z"}, 400, "expires_at"},
			{"bad CIDR", admin("acct_bad"), map[string]any{"allowed_ips": []string{"10.0.0.0/33"}}, 400, "allowed_ips"},
			{"unknown plan", admin("acct_bad"), map[string]any{"plan": "platinum"}, 400, "plan"},
		}
		for _, tc := range cases {
			r := e.do("POST", "/api/v1/api-keys", tc.headers, tc.body)
			assert.Equal(t, tc.status, r.status, tc.name)
			assert.Contains(t, r.body["error"], tc.msg, tc.name)
		}
		assert.Equal(t, http.StatusNotFound, e.do("DELETE", "/api/v1/api-keys/no-such-id", admin("acct_bad"), nil).status)
		list := e.do("GET", "/api/v1/api-keys", admin("acct_bad"), nil)
		assert.Len(t, list.body["data"], 1, "nothing was created by the refused requests")
	})

	t.Run("the eleventh active key is refused", func(t *testing.T) {
		for range 10 {
			e.create("acct_max", map[string]any{})
		}
		r := e.do("POST", "/api/v1/api-keys", admin("acct_max"), map[string]any{})
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Equal(t, "Maximum number of API keys (10) reached. Please expire unused keys.", r.body["error"])
	})

	t.Run("update, disable, enable and the audit trail", func(t *testing.T) {
		id, key := e.create("acct_life", map[string]any{"name": "ci", "permissions": []string{"read"}})
		r := e.do("PATCH", "/api/v1/api-keys/"+id, admin("acct_life"), map[string]any{"name": "deploy", "permissions": []string{"read", "write"}})
		require.Equal(t, http.StatusOK, r.status, r.raw)
		assert.Equal(t, "deploy", r.body["name"])
		assert.Equal(t, http.StatusCreated, e.do("POST", "/api/v1/recordings", bearer(key), map[string]any{"title": "t"}).status,
			"the new permission applies at once")
		assert.Equal(t, http.StatusBadRequest, e.do("PATCH", "/api/v1/api-keys/"+id, admin("acct_life"), map[string]any{"environment": "test"}).status)

		r = e.do("POST", "/api/v1/api-keys/"+id+"/disable", admin("acct_life"), nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		assert.Equal(t, "disabled", r.body["status"])
		refused := e.do("GET", "/api/v1/health", bearer(key), nil)
		assert.Equal(t, http.StatusUnauthorized, refused.status)
		assert.Equal(t, "Invalid or expired API key", refused.body["error"], "a disabled key is refused as an unknown one")
		require.Equal(t, http.StatusOK, e.do("POST", "/api/v1/api-keys/"+id+"/enable", admin("acct_life"), nil).status)
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/health", bearer(key), nil).status)

		events := e.do("GET", "/api/v1/api-keys/"+id+"/events", admin("acct_life"), nil)
		require.Equal(t, http.StatusOK, events.status, events.raw)
		assert.NotContains(t, events.raw, key[14:], "events never hold the key")
		var types []any
		for _, ev := range events.body["data"].([]any) {
			ev := ev.(map[string]any)
			types = append(types, ev["type"])
			assert.Equal(t, "admin", ev["actor"])
			assert.Equal(t, "127.0.0.1", ev["ip"])
		}
		assert.Equal(t, []any{"key.enabled", "key.disabled", "key.updated", "key.created"}, types)
		all := e.do("GET", "/api/v1/api-keys/events?limit=2", admin("acct_life"), nil)
		require.Equal(t, http.StatusOK, all.status)
		assert.Len(t, all.body["data"], 2)
		assert.NotNil(t, all.body["next_cursor"])
	})
}

// typo changes the last character of key, always to a different one.
func typo(key string) string {
	if strings.HasSuffix(key, "x") {
		return key[:len(key)-1] + "y"
	}
	return key[:len(key)-1] + "x"
}

// What a new user tried in the first hour, each once a surprise.
func TestFirstHour(t *testing.T) {
	e := start(t, "memory")

	t.Run("the README's Try it shows the headers a new account gets", func(t *testing.T) {
		readme, err := os.ReadFile("../../README.md")
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^# -> 200, with X-RateLimit-Limit: (\d+), X-RateLimit-Remaining: (\d+)`).FindStringSubmatch(string(readme))
		require.NotNil(t, m, "the README's Try it names the rate-limit headers")
		r := e.do("POST", "/api/v1/api-keys", admin("acct_try_it"), map[string]any{"name": "Backend", "permissions": []string{"read", "write"}, "plan": "starter"})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		got := e.do("GET", "/api/v1/recordings", xAPIKey(r.body["api_key"].(string)), nil)
		require.Equal(t, http.StatusOK, got.status)
		assert.Equal(t, m[1], got.header.Get("X-RateLimit-Limit"))
		assert.Equal(t, m[2], got.header.Get("X-RateLimit-Remaining"))
	})

	t.Run("a key created with only a description can read", func(t *testing.T) {
		r := e.do("POST", "/api/v1/api-keys", admin("acct_fh"), map[string]any{"description": "Production API key"})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		assert.Equal(t, []any{"read"}, r.body["permissions"])
		key := r.body["api_key"].(string)
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/recordings", xAPIKey(key), nil).status)
		assert.Equal(t, http.StatusForbidden, e.do("POST", "/api/v1/recordings", xAPIKey(key), `{}`).status)
	})

	t.Run("an unknown plan is refused", func(t *testing.T) {
		for _, plan := range []string{"Business", "enterprise"} {
			r := e.do("POST", "/api/v1/api-keys", admin("acct_fh"), map[string]any{"plan": plan})
			assert.Equal(t, http.StatusBadRequest, r.status, plan)
			assert.Contains(t, r.body["error"], "unknown plan", plan)
		}
	})

	t.Run("an endpoint restriction names a route", func(t *testing.T) {
		r := e.do("POST", "/api/v1/api-keys", admin("acct_fh"), map[string]any{"allowed_endpoints": []string{"GET /api/v1/recordings/rec_2"}})
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Contains(t, r.body["error"], `use the route pattern "GET /api/v1/recordings/{id}"`)
		r = e.do("POST", "/api/v1/api-keys", admin("acct_fh"), map[string]any{"allowed_endpoints": []string{"GET /api/v1/recordings/{id}"}})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		key := r.body["api_key"].(string)
		_, writer := e.create("acct_fh", map[string]any{"permissions": []string{"write"}})
		created := e.do("POST", "/api/v1/recordings", xAPIKey(writer), `{"title":"x"}`)
		require.Equal(t, http.StatusCreated, created.status)
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/recordings/"+created.body["id"].(string), xAPIKey(key), nil).status,
			"the restricted key reaches its route")
		assert.Equal(t, http.StatusForbidden, e.do("GET", "/api/v1/recordings", xAPIKey(key), nil).status)
	})

	t.Run("recordings are kept per account", func(t *testing.T) {
		_, a := e.create("acct_x", map[string]any{"permissions": []string{"read", "write"}})
		_, b := e.create("acct_y", map[string]any{"permissions": []string{"read", "write"}})
		created := e.do("POST", "/api/v1/recordings", xAPIKey(a), `{"title":"private"}`)
		require.Equal(t, http.StatusCreated, created.status)
		list := e.do("GET", "/api/v1/recordings", xAPIKey(b), nil)
		assert.Equal(t, http.StatusOK, list.status)
		assert.NotContains(t, list.raw, "private")
		assert.Equal(t, http.StatusNotFound, e.do("GET", "/api/v1/recordings/"+created.body["id"].(string), xAPIKey(b), nil).status)
		assert.Contains(t, e.do("GET", "/api/v1/recordings", xAPIKey(a), nil).raw, "private")
	})

	t.Run("an unknown route is JSON and takes no token", func(t *testing.T) {
		_, key := e.create("acct_nf", nil)
		before := e.do("GET", "/api/v1/recordings", xAPIKey(key), nil)
		r := e.do("GET", "/api/v1/nothing-here", xAPIKey(key), nil)
		assert.Equal(t, http.StatusNotFound, r.status)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.Equal(t, "Not found", r.body["error"])
		after := e.do("GET", "/api/v1/recordings", xAPIKey(key), nil)
		remaining := func(r response) int {
			n, err := strconv.Atoi(r.header.Get("X-Ratelimit-Remaining"))
			require.NoError(t, err)
			return n
		}
		assert.Equal(t, remaining(before)-1, remaining(after), "only the two real requests took a token")
	})

	t.Run("rotation under grace says what happened and keeps the limit", func(t *testing.T) {
		var ids []string
		for range 10 {
			id, _ := e.create("acct_rot", nil)
			ids = append(ids, id)
		}
		r := e.do("POST", "/api/v1/api-keys/"+ids[9]+"/rotate", admin("acct_rot"), map[string]any{"grace_period_seconds": 60})
		assert.Equal(t, http.StatusBadRequest, r.status, "11 keys would verify during the grace period")
		assert.Contains(t, r.body["error"], "Maximum number of API keys (10)")
		require.Equal(t, http.StatusOK, e.do("DELETE", "/api/v1/api-keys/"+ids[0], admin("acct_rot"), nil).status)
		r = e.do("POST", "/api/v1/api-keys/"+ids[9]+"/rotate", admin("acct_rot"), map[string]any{"grace_period_seconds": 60})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		r = e.do("POST", "/api/v1/api-keys/"+ids[9]+"/rotate", admin("acct_rot"), map[string]any{"grace_period_seconds": 60})
		assert.Equal(t, http.StatusConflict, r.status)
		assert.Equal(t, "API key was already rotated; rotate its replacement instead", r.body["error"])
		r = e.do("POST", "/api/v1/api-keys", admin("acct_rot"), map[string]any{})
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Contains(t, r.body["error"], "Maximum number of API keys (10)", "10 keys verify: the old one in its grace period and the new one")
	})
}

// A client that never sends the body it announced, or sends headers too
// large, holds a connection only as long as the server's limits allow.
func TestSlowClientsAreBounded(t *testing.T) {
	srv, err := newServer(serverConfig{AdminToken: testToken, Memory: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	l := productionLimits
	l.read = 300 * time.Millisecond
	hs := newHTTPServer("", srv.handler, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	// The management handler reads the body: it waits for it until the
	// read timeout, then the connection is dropped.
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.Write([]byte("POST /api/v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testToken + "\r\nContent-Length: 1000\r\n\r\n{"))
	require.NoError(t, err)
	// The client's own deadline only guards against a hang: the server
	// must close the connection first (io.ReadAll then ends without an
	// error), whatever the time a busy machine takes.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	_, err = io.ReadAll(c)
	require.NoError(t, err, "the server dropped the stalled connection")
	t.Logf("a stalled body was dropped after %v (read timeout %v)", time.Since(start), l.read)

	// Headers over the limit are refused before any handler runs.
	req, err := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v1/health", nil)
	require.NoError(t, err)
	req.Header.Set("X-Padding", strings.Repeat("a", 1<<20))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)

	assert.NotZero(t, productionLimits.readHeader)
	assert.NotZero(t, productionLimits.read)
	assert.NotZero(t, productionLimits.write)
	assert.NotZero(t, productionLimits.idle)
}

// stallerEnv makes the test binary a client that opens many connections
// to the address it names and stalls them (see TestManyStalledConnections).
const stallerEnv = "KEYGATE_STALL_TARGET"

// TestStaller is the child process of TestManyStalledConnections: in a
// process of its own, so that its connections do not count against this
// one's file descriptors. It skips otherwise.
func TestStaller(t *testing.T) {
	target := os.Getenv(stallerEnv)
	if target == "" {
		t.Skip("run by TestManyStalledConnections")
	}
	var conns []net.Conn
	for i := range 10_000 {
		c, err := net.Dial("tcp", target)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		// Half never finish their headers; half announce a body, with a
		// key that is not valid, and never send it.
		partial := "POST /api/v1/recordings HTTP/1.1\r\nHost: x\r\nX-API-Key: kg_live_"
		if i%2 == 1 {
			partial = "POST /api/v1/recordings HTTP/1.1\r\nHost: x\r\nX-API-Key: kg_live_nope\r\nContent-Length: 100000\r\n\r\n{"
		}
		if _, err := c.Write([]byte(partial)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	fmt.Println("stalling")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent is done
	runtime.KeepAlive(conns)
}

// 10,000 connections that never finish a request leave the service
// answering everyone else promptly.
func TestManyStalledConnections(t *testing.T) {
	srv, err := newServer(serverConfig{AdminToken: testToken, Memory: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	hs := newHTTPServer("", srv.handler, productionLimits)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	child := exec.Command(os.Args[0], "-test.run=^TestStaller$", "-test.count=1")
	child.Env = append(os.Environ(), stallerEnv+"="+ln.Addr().String())
	stdin, err := child.StdinPipe()
	require.NoError(t, err)
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = child.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the staller opened its connections")
	require.Equal(t, "stalling\n", line)

	base := "http://" + ln.Addr().String()
	var took []time.Duration
	for range 20 {
		start := time.Now()
		req, err := http.NewRequest("GET", base+"/api/v1/api-keys", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		took = append(took, time.Since(start))
	}
	// Every request was answered (http.DefaultClient has no timeout: a
	// starved server would hang the test); the times are logged, not
	// asserted, since a busy machine moves them.
	slices.Sort(took)
	t.Logf("with 10,000 stalled connections open, 20 requests took %v (median), %v (slowest)", took[10], took[19])
}

// serveEnv makes the test binary run the service itself, as
// `go run ./examples/server` does (see TestKeysSurviveKill9).
const serveEnv = "KEYGATE_SERVE_CHILD"

// TestServeChild is the service run by TestKeysSurviveKill9. It skips
// otherwise.
func TestServeChild(t *testing.T) {
	if os.Getenv(serveEnv) == "" {
		t.Skip("run by TestKeysSurviveKill9")
	}
	if err := run(); err != nil {
		t.Fatal(err)
	}
}

// With no environment but a data directory, the service keeps its keys,
// limits and credits in SQLite: killed with SIGKILL right after a 201, it
// verifies the key when it starts again, with the admin token it
// generated the first time; credits spent stay spent, and a day window
// goes on from where it stood.
func TestKeysSurviveKill9(t *testing.T) {
	c := newChild(t)
	first := c.serve()
	token, err := os.ReadFile(filepath.Join(c.dataDir, "admin-token"))
	require.NoError(t, err)
	info, err := os.Stat(filepath.Join(c.dataDir, "admin-token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	admin := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}
	status, body := c.call("PUT", "/api/v1/account", admin, `{"credits":{"balance":3}}`)
	require.Equal(t, http.StatusOK, status, body)
	windowed := map[string]string{"Authorization": admin["Authorization"], "X-Account-ID": "acct_window"}
	status, body = c.call("PUT", "/api/v1/account", windowed, `{"limits":[{"limit":5,"period_seconds":86400}]}`)
	require.Equal(t, http.StatusOK, status, body)
	status, created := c.call("POST", "/api/v1/api-keys", admin, "{}")
	require.Equal(t, http.StatusCreated, status, created)
	status, windowKey := c.call("POST", "/api/v1/api-keys", windowed, "{}")
	require.Equal(t, http.StatusCreated, status, windowKey)
	paying := map[string]string{"X-API-Key": created["api_key"].(string)}
	for i := range 3 {
		status, body := c.call("GET", "/api/v1/health", paying, "")
		require.Equal(t, http.StatusOK, status, "credit %d: %v", i+1, body)
		status, body = c.call("GET", "/api/v1/health", map[string]string{"X-API-Key": windowKey["api_key"].(string)}, "")
		require.Equal(t, http.StatusOK, status, "request %d of 5 today: %v", i+1, body)
	}
	status, body = c.call("GET", "/api/v1/health", paying, "")
	require.Equal(t, http.StatusTooManyRequests, status, "3 credits spent: %v", body)
	// What the service wrote is its user's alone, whatever the umask.
	info, err = os.Stat(c.dataDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "the data directory")
	for _, name := range []string{"keys.db", "keys.db-wal", "keys.db-shm"} {
		info, err := os.Stat(filepath.Join(c.dataDir, name))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), name)
	}
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	c.serve()
	status, body = c.call("GET", "/api/v1/health", paying, "")
	assert.Equal(t, http.StatusTooManyRequests, status, "the key verifies after a SIGKILL and a restart, and its credits stay spent: %v", body)
	assert.Equal(t, "Quota exceeded", body["error"])
	req, err := http.NewRequest("GET", "http://"+c.addr+"/api/v1/health", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", windowKey["api_key"].(string))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-RateLimit-Remaining"), "the fourth of 5 today, not the first")
	status, _ = c.call("GET", "/api/v1/api-keys", admin, "")
	assert.Equal(t, http.StatusOK, status, "the kept admin token still works")
}

// child runs the reference service in a process of its own, on SQLite
// in a data directory, so that a test can kill it with SIGKILL and start
// it again on the same data.
type child struct {
	t       *testing.T
	addr    string
	dataDir string
	env     []string
}

func newChild(t *testing.T, env ...string) *child {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return &child{t: t, addr: addr, dataDir: t.TempDir(), env: env}
}

// serve starts the service and waits until it answers.
func (c *child) serve() *exec.Cmd {
	t := c.t
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), serveEnv+"=1", "ADDR="+c.addr, "DATA_DIR="+c.dataDir,
		"ADMIN_TOKEN=", "REDIS_URL=", "DATABASE_URL=", "KEYGATE_STORE=", "WEBHOOK_URL=", "WEBHOOK_SECRET=",
		"WEBHOOK_ALLOW_PRIVATE=", "GITHUB_SCANNING_KEYS=", "GITLAB_REVOCATION_TOKEN=")
	cmd.Env = append(cmd.Env, c.env...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	eventually(t, time.Minute, func() bool {
		resp, err := http.Get("http://" + c.addr + "/api/v1/health")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	return cmd
}

// call makes a request of the service and decodes its JSON answer.
func (c *child) call(method, path string, header map[string]string, body string) (int, map[string]any) {
	req, err := http.NewRequest(method, "http://"+c.addr+path, strings.NewReader(body))
	require.NoError(c.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var answer map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

// admin returns the headers of the admin token the service generated.
func (c *child) admin() map[string]string {
	token, err := os.ReadFile(filepath.Join(c.dataDir, "admin-token"))
	require.NoError(c.t, err)
	return map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}
}

// A port already taken is an error naming ADDR, and the service prints
// no banner for a port it does not serve.
func TestTakenPortIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), serveEnv+"=1", "ADDR="+ln.Addr().String(), "DATA_DIR="+t.TempDir(),
		"ADMIN_TOKEN=x", "REDIS_URL=", "DATABASE_URL=", "KEYGATE_STORE=memory")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the service must not start: %s", out)
	assert.Contains(t, string(out), "ADDR="+ln.Addr().String())
	assert.Contains(t, string(out), "address already in use")
	assert.NotContains(t, string(out), "keygate reference service on")
}

// An admin token file that others can read is refused, never used.
func TestAdminTokenReadableByOthers(t *testing.T) {
	t.Setenv("ADMIN_TOKEN", "")
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-token")
	require.NoError(t, os.WriteFile(path, []byte("admin_kept\n"), 0o600))
	token, err := adminToken(serverConfig{DataDir: dir})
	require.NoError(t, err)
	assert.Equal(t, "admin_kept", token)
	require.NoError(t, os.Chmod(path, 0o666))
	_, err = adminToken(serverConfig{DataDir: dir})
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "chmod 600")
}

// A data directory the service cannot use is an error naming the path.
func TestUnusableDataDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "keys.db"), 0o700)) // not a file
	_, err := newServer(serverConfig{DataDir: dir, AdminToken: testToken})
	require.ErrorContains(t, err, filepath.Join(dir, "keys.db"))
	require.ErrorContains(t, err, "DATA_DIR")
}

func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Events survive SIGKILL: with WEBHOOK_URL set, a receiver down while
// keys change and the service killed, every event arrives once the
// service runs again and the receiver is back: in order per key, each
// verified with its Standard Webhooks signature, under the webhook-id
// of its first attempt.
func TestEventsSurviveKill9(t *testing.T) {
	secret := webhook.NewSecret()
	var mu sync.Mutex
	up := false
	attempted := map[string]bool{} // webhook-ids tried while down
	var got []map[string]any
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !assert.NoError(t, webhook.Verify(secret, r.Header, body)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !up {
			attempted[r.Header.Get(webhook.HeaderID)] = true
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var e map[string]any
		require.NoError(t, json.Unmarshal(body, &e))
		e["webhook-id"] = r.Header.Get(webhook.HeaderID)
		got = append(got, e)
	}))
	t.Cleanup(receiver.Close)

	c := newChild(t, "WEBHOOK_URL="+receiver.URL, "WEBHOOK_SECRET="+secret)
	first := c.serve()
	admin := c.admin()
	status, a := c.call("POST", "/api/v1/api-keys", admin, `{"name":"a"}`)
	require.Equal(t, http.StatusCreated, status, a)
	status, b := c.call("POST", "/api/v1/api-keys", admin, `{"name":"b"}`)
	require.Equal(t, http.StatusCreated, status, b)
	aID := a["id"].(string)
	for _, step := range []struct{ method, path, body string }{
		{"PATCH", "/api/v1/api-keys/" + aID, `{"name":"a2"}`},
		{"POST", "/api/v1/api-keys/" + aID + "/disable", ""},
		{"DELETE", "/api/v1/api-keys/" + aID, ""},
	} {
		status, body := c.call(step.method, step.path, admin, step.body)
		require.Less(t, status, 300, "%s %s: %v", step.method, step.path, body)
	}
	// Kill it once both keys' first events have failed and been settled:
	// the outbox then holds all five, two of them tried.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dataDir, "keys.db")+"?mode=ro")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	eventually(t, time.Minute, func() bool {
		var tried, pending int
		err := db.QueryRow("SELECT COUNT(CASE WHEN attempts > 0 AND lease = '' THEN 1 END), COUNT(*) FROM keygate_outbox").Scan(&tried, &pending)
		return err == nil && tried == 2 && pending == 5
	})
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	mu.Lock()
	up = true
	tried := maps.Clone(attempted)
	mu.Unlock()
	require.Len(t, tried, 2)

	c.serve()
	eventually(t, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 5
	})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 5, "each event once")
	var ofA []string
	ids := map[string]bool{}
	for _, e := range got {
		ids[e["webhook-id"].(string)] = true
		if e["key_id"] == aID {
			ofA = append(ofA, e["type"].(string))
		}
		assert.NotContains(t, fmt.Sprint(e), a["api_key"], "never the key's text")
	}
	assert.Equal(t, []string{"key.created", "key.updated", "key.disabled", "key.revoked"}, ofA)
	for id := range tried {
		assert.True(t, ids[id], "event %s arrived under the webhook-id of its first attempt", id)
	}
}

// WEBHOOK_URL needs a valid secret and an http(s) URL.
func TestWebhookNeedsASecret(t *testing.T) {
	_, err := newServer(serverConfig{DataDir: t.TempDir(), AdminToken: testToken, WebhookURL: "https://example.com/hook"})
	require.ErrorContains(t, err, "WEBHOOK_SECRET")
	_, err = newServer(serverConfig{DataDir: t.TempDir(), AdminToken: testToken, WebhookURL: "ftp://example.com", WebhookSecrets: []string{webhook.NewSecret()}})
	require.ErrorContains(t, err, "WEBHOOK_URL")
}

// GITHUB_SCANNING_KEYS mounts the secret-scanning handler, which refuses
// a report GitHub did not sign; GITLAB_REVOCATION_TOKEN mounts GitLab's.
func TestSecretScanningIsMounted(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	keys, err := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": "gh-1", "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}}})
	require.NoError(t, err)
	srv, err := newServer(serverConfig{DataDir: t.TempDir(), AdminToken: testToken, GitHubScanningKeys: keys, GitLabRevocationToken: "gl-token"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	types := httptest.NewRequest("GET", "/api/v1/secret-scanning/gitlab/v1/revocable_token_types", nil)
	types.Header.Set("Authorization", "gl-token")
	tw := httptest.NewRecorder()
	srv.handler.ServeHTTP(tw, types)
	assert.Equal(t, http.StatusOK, tw.Code, "GITLAB_REVOCATION_TOKEN mounts GitLab's API: %s", tw.Body.String())
	r := httptest.NewRequest("POST", "/api/v1/secret-scanning/github", strings.NewReader(`[{"token":"kg_live_x","type":"t","url":"u","source":"content"}]`))
	r.Header.Set("Github-Public-Key-Identifier", "gh-1")
	w := httptest.NewRecorder()
	srv.handler.ServeHTTP(w, r)
	assert.Equal(t, http.StatusUnauthorized, w.Code, w.Body.String())

	_, err = newServer(serverConfig{DataDir: t.TempDir(), AdminToken: testToken, GitHubScanningKeys: []byte(`{"public_keys":[]}`)})
	require.ErrorContains(t, err, "GITHUB_SCANNING_KEYS")
}

// An account's endpoint receives its account's events only, signed with
// its own secret, from the outbox of SQLite and of Redis.
func TestAccountWebhooks(t *testing.T) {
	for _, store := range []string{"sqlite", "redis"} {
		t.Run(store, func(t *testing.T) { accountWebhooks(t, store) })
	}
}

func accountWebhooks(t *testing.T, store string) {
	type received struct {
		mu     sync.Mutex
		secret string
		events []map[string]any
	}
	receivers := map[string]*received{"acct_a": {}, "acct_b": {}}
	urls := map[string]string{}
	for account, rc := range receivers {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if !assert.NoError(t, webhook.Verify(rc.secret, r.Header, body), "%s's endpoint: a message signed with another secret", account) {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			var e map[string]any
			require.NoError(t, json.Unmarshal(body, &e))
			rc.events = append(rc.events, e)
		}))
		t.Cleanup(srv.Close)
		urls[account] = srv.URL
	}
	cfg := serverConfig{DataDir: t.TempDir(), AdminToken: testToken, AllowPrivateWebhooks: true}
	if store == "redis" {
		cfg.RedisURL = redistest.URL()
		cfg.Namespace = redistest.Name(t, redistest.Client(t), "srv")
	}
	srv, err := newServer(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(func() { ts.Close(); _ = srv.Close() })
	e := &env{t: t, url: ts.URL}
	for account, rc := range receivers {
		r := e.do("POST", "/api/v1/webhooks", admin(account), map[string]any{"url": urls[account], "events": []string{"key.*"}})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		rc.mu.Lock()
		rc.secret = r.body["secret"].(string)
		rc.mu.Unlock()
	}
	keys := map[string]string{}
	for account := range receivers {
		id, _ := e.create(account, map[string]any{"name": account})
		keys[account] = id
		r := e.do("DELETE", "/api/v1/api-keys/"+id, admin(account), nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
	}
	for account, rc := range receivers {
		eventually(t, time.Minute, func() bool {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			return len(rc.events) >= 2
		})
		rc.mu.Lock()
		for _, ev := range rc.events {
			assert.Equal(t, account, ev["account"], "an event of another account")
			assert.Equal(t, keys[account], ev["key_id"])
		}
		rc.mu.Unlock()
	}
}

// An account's endpoint that answers 410 Gone is turned off, and the
// account's trail says so with endpoint.disabled.
func TestGoneEndpointIsTurnedOff(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(gone.Close)
	srv, err := newServer(serverConfig{DataDir: t.TempDir(), AdminToken: testToken, AllowPrivateWebhooks: true})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(func() { ts.Close(); _ = srv.Close() })
	e := &env{t: t, url: ts.URL}
	r := e.do("POST", "/api/v1/webhooks", admin("acct_gone"), map[string]any{"url": gone.URL})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	e.create("acct_gone", map[string]any{"name": "k"})
	eventually(t, time.Minute, func() bool {
		r := e.do("GET", "/api/v1/webhooks", admin("acct_gone"), nil)
		data, _ := r.body["data"].([]any)
		return len(data) == 1 && data[0].(map[string]any)["status"] == "disabled"
	})
	r = e.do("GET", "/api/v1/api-keys/events", admin("acct_gone"), nil)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	assert.Contains(t, r.raw, `"type":"endpoint.disabled"`)
}

// An endpoint's delivery log shows each attempt, a failed one and the
// retry that delivered; a logged event can be sent again, under its
// webhook-id; another account's endpoint, or an unknown attempt, is 404.
func TestDeliveryLogAndReplay(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	fail := true
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, r.Header.Get(webhook.HeaderID))
		if fail {
			fail = false
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(receiver.Close)
	srv, err := newServer(serverConfig{DataDir: t.TempDir(), AdminToken: testToken, AllowPrivateWebhooks: true})
	require.NoError(t, err)
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(func() { ts.Close(); _ = srv.Close() })
	e := &env{t: t, url: ts.URL}
	r := e.do("POST", "/api/v1/webhooks", admin("acct_log"), map[string]any{"url": receiver.URL})
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	ep := r.body["id"].(string)
	e.create("acct_log", map[string]any{"name": "k"})

	var log []any
	eventually(t, time.Minute, func() bool {
		r := e.do("GET", "/api/v1/webhooks/"+ep+"/deliveries", admin("acct_log"), nil)
		log, _ = r.body["data"].([]any)
		return len(log) == 2
	})
	newest, oldest := log[0].(map[string]any), log[1].(map[string]any)
	assert.Equal(t, "delivered", newest["status"])
	assert.Equal(t, "failed", oldest["status"])
	assert.Equal(t, 500.0, oldest["code"])
	assert.Equal(t, "key.created", newest["type"])
	assert.Equal(t, newest["event_id"], oldest["event_id"])

	r = e.do("POST", "/api/v1/webhooks/"+ep+"/deliveries/"+newest["id"].(string)+"/retry", admin("acct_log"), nil)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	assert.Equal(t, "delivered", r.body["status"])
	mu.Lock()
	require.Len(t, ids, 3)
	assert.Equal(t, ids[0], ids[2], "sent again under its webhook-id")
	mu.Unlock()

	r = e.do("GET", "/api/v1/webhooks/"+ep+"/deliveries", admin("acct_other"), nil)
	assert.Equal(t, http.StatusNotFound, r.status, "another account's endpoint")
	r = e.do("POST", "/api/v1/webhooks/"+ep+"/deliveries/dlv_unknown/retry", admin("acct_log"), nil)
	assert.Equal(t, http.StatusNotFound, r.status)
}

// /metrics serves the verification and limiter counters in the
// Prometheus text format, and never a key, a key ID or an account.
func TestMetrics(t *testing.T) {
	e := start(t, "sqlite")
	id, key := e.create("acct_metrics_7f3a", map[string]any{"name": "m"})
	for range 3 {
		r := e.do("GET", "/api/v1/health", bearer(key), nil)
		require.Equal(t, http.StatusOK, r.status, r.raw)
	}
	e.do("GET", "/api/v1/health", bearer("kg_live_not_a_key"), nil)
	r := e.do("GET", "/metrics", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	eventually(t, time.Minute, func() bool { // the key's creation, delivered to no endpoint
		return strings.Contains(e.do("GET", "/metrics", nil, nil).raw, "keygate_event_deliveries_total")
	})
	r = e.do("GET", "/metrics", nil, nil)
	for _, want := range []string{"keygate_verifications_total", `outcome="ok"`, "keygate_ratelimit_decisions_total", `outcome="allowed"`, "keygate_event_deliveries_total", "keygate_cache_feed_healthy 1", `keygate_breaker_open{component="sqlstore"`} {
		assert.Contains(t, r.raw, want)
	}
	for _, secret := range []string{key, id, "acct_metrics_7f3a"} {
		assert.NotContains(t, r.raw, secret)
	}
}

// The management API's OpenAPI description is served without signing in.
func TestOpenAPIIsServed(t *testing.T) {
	e := start(t, "memory")
	r := e.do("GET", "/api/v1/api-keys/openapi.json", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "3.1.0", r.body["openapi"])
	assert.Contains(t, r.raw, `"/api/v1/webhooks/{id}/deliveries"`)
}
