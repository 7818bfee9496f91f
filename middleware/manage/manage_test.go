package manage_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/middleware/manage"
	"github.com/keygate/keygate/store/memstore"
)

func handler(t *testing.T, cfg manage.Config) (*manage.Handler, *apikey.Service) {
	t.Helper()
	if cfg.Service == nil {
		svc, err := apikey.New(memstore.New(), apikey.Config{})
		require.NoError(t, err)
		cfg.Service = svc
	}
	cfg.Prefix = "/keys"
	cfg.Authenticate = func(r *http.Request) (string, bool) {
		account := r.Header.Get("X-User")
		return account, account != ""
	}
	h, err := manage.New(cfg)
	require.NoError(t, err)
	return h, cfg.Service
}

func call(h http.Handler, method, path, user, body string, header ...string) (int, map[string]any) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if user != "" {
		r.Header.Set("X-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestLifecycle(t *testing.T) {
	store := memstore.New()
	svc, err := apikey.New(store, apikey.Config{})
	require.NoError(t, err)
	rec, err := usage.New(store, usage.Config{FlushInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	h, _ := handler(t, manage.Config{Service: svc, Usage: store, Recorder: rec})

	status, created := call(h, "POST", "/keys", "alice", `{"name":"ci","permissions":["read"],"allowed_ips":["10.0.0.1"],"expires_at":"2099-01-01T00:00:00Z"}`)
	require.Equal(t, 201, status, created)
	id := created["id"].(string)
	assert.Equal(t, []any{"10.0.0.1/32"}, created["allowed_ips"])
	assert.Equal(t, "2099-01-01T00:00:00Z", created["expires_at"])

	status, one := call(h, "GET", "/keys/"+id, "alice", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "active", one["status"])
	assert.NotContains(t, one, "api_key")
	assert.NotContains(t, one, "last_used_at", "never used")

	status, _ = call(h, "GET", "/keys/"+id, "bob", "")
	assert.Equal(t, 404, status, "another account's key")

	used := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	rec.Record(id, "GET /x", 200, used) // flushed by the handler before it reads
	status, u := call(h, "GET", "/keys/"+id+"/usage", "alice", "")
	assert.Equal(t, 200, status)
	assert.EqualValues(t, 1, u["total_requests"])
	assert.Equal(t, "2031-01-01T00:00:00Z", u["last_used_at"])
	status, one = call(h, "GET", "/keys/"+id, "alice", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "2031-01-01T00:00:00Z", one["last_used_at"])

	status, rotated := call(h, "POST", "/keys/"+id+"/rotate", "alice", `{"grace_period_seconds":60}`)
	require.Equal(t, 201, status, rotated)
	assert.NotEqual(t, id, rotated["id"])
	assert.NotEmpty(t, rotated["api_key"])
	status, again := call(h, "POST", "/keys/"+id+"/rotate", "alice", "")
	assert.Equal(t, 409, status, "a rotated key cannot be rotated again")
	assert.Equal(t, "API key was already rotated; rotate its replacement instead", again["error"])
	status, old := call(h, "GET", "/keys/"+id, "alice", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "rotated", old["status"], "inside its grace period")
	assert.Equal(t, rotated["id"], old["replaced_by"])

	status, revoked := call(h, "DELETE", "/keys/"+rotated["id"].(string), "alice", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "API key revoked successfully", revoked["message"])
	status, again = call(h, "POST", "/keys/"+rotated["id"].(string)+"/rotate", "alice", "")
	assert.Equal(t, 409, status)
	assert.Equal(t, "API key is revoked", again["error"])
	status, list := call(h, "GET", "/keys", "alice", "")
	assert.Equal(t, 200, status)
	assert.Len(t, list["data"], 2)
}

// A key created with only a description can read: it is not refused
// everywhere.
func TestDefaultPermissions(t *testing.T) {
	h, _ := handler(t, manage.Config{})
	status, created := call(h, "POST", "/keys", "alice", `{"description":"Production API key"}`)
	require.Equal(t, 201, status, created)
	assert.Equal(t, []any{"read"}, created["permissions"])
	status, created = call(h, "POST", "/keys", "alice", `{"permissions":[]}`)
	require.Equal(t, 201, status, created)
	assert.Equal(t, []any{}, created["permissions"], "an explicit empty list grants nothing")

	h, _ = handler(t, manage.Config{Permissions: []apikey.Permission{apikey.Read, apikey.Write}})
	_, created = call(h, "POST", "/keys", "alice", `{}`)
	assert.Equal(t, []any{"read", "write"}, created["permissions"])
}

// At the 10-key limit, a rotation with a grace period would leave 11 keys
// that verify: refused. Without grace the old key dies at once: allowed.
func TestRotationKeepsTheLimitUnderGrace(t *testing.T) {
	h, svc := handler(t, manage.Config{})
	var id string
	for range 10 {
		status, created := call(h, "POST", "/keys", "alice", `{}`)
		require.Equal(t, 201, status, created)
		id = created["id"].(string)
	}
	status, body := call(h, "POST", "/keys/"+id+"/rotate", "alice", `{"grace_period_seconds":3600}`)
	assert.Equal(t, 400, status)
	assert.Equal(t, "Maximum number of API keys (10) reached. Please expire unused keys.", body["error"])
	status, body = call(h, "POST", "/keys/"+id+"/rotate", "alice", `{"grace_period_seconds":0}`)
	require.Equal(t, 201, status, body)

	page, err := svc.ListPage(context.Background(), "alice", "", 100)
	keys := page.Items
	require.NoError(t, err)
	active := 0
	for _, k := range keys {
		if k.Active(time.Now()) {
			active++
		}
	}
	assert.Equal(t, 10, active)
}

func TestBadInput(t *testing.T) {
	h, svc := handler(t, manage.Config{})
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "alice"})
	require.NoError(t, err)
	id := issued.Key.ID
	tests := []struct {
		name, method, path, user, body string
		status                         int
		msg                            string
	}{
		{"not logged in", "GET", "/keys", "", "", 401, "Could not validate credentials"},
		{"empty body", "POST", "/keys", "alice", "", 400, "empty"},
		{"trailing data", "POST", "/keys", "alice", `{} {}`, 400, "trailing"},
		{"wrong type", "POST", "/keys", "alice", `{"permissions":"read"}`, 400, "invalid JSON"},
		{"body over 64 KiB", "POST", "/keys", "alice", `{"description":"` + strings.Repeat("a", 70<<10) + `"}`, 400, "invalid JSON"},
		{"expiry not RFC 3339", "POST", "/keys", "alice", `{"expires_at":"tomorrow"}`, 400, "RFC 3339"},
		{"expiry at the zero time", "POST", "/keys", "alice", `{"expires_at":"0001-01-01T00:00:00Z"}`, 400, "expires_at"},
		{"expiry in the year 10000", "POST", "/keys", "alice", `{"expires_at":"9999-12-31T23:59:59-23:59"}`, 400, "expires_at"},
		{"bad network", "POST", "/keys", "alice", `{"allowed_ips":["10.0.0.0/33"]}`, 400, "allowed_ips"},
		{"bad address", "POST", "/keys", "alice", `{"allowed_ips":["ten"]}`, 400, "allowed_ips"},
		{"negative grace", "POST", "/keys/" + id + "/rotate", "alice", `{"grace_period_seconds":-1}`, 400, "grace_period_seconds"},
		{"grace over 30 days", "POST", "/keys/" + id + "/rotate", "alice", `{"grace_period_seconds":99999999}`, 400, "grace_period_seconds"},
		{"unknown id", "GET", "/keys/nope", "alice", "", 404, "API key not found"},
		{"rotate unknown id", "POST", "/keys/nope/rotate", "alice", "", 404, "API key not found"},
		{"usage without a usage store", "GET", "/keys/" + id + "/usage", "alice", "", 501, "not recorded"},
	}
	for _, tc := range tests {
		status, body := call(h, tc.method, tc.path, tc.user, tc.body)
		assert.Equal(t, tc.status, status, tc.name)
		assert.Contains(t, body["error"], tc.msg, tc.name)
	}
	page, err := svc.ListPage(context.Background(), "alice", "", 100)
	keys := page.Items
	require.NoError(t, err)
	assert.Len(t, keys, 1, "nothing changed")
	assert.True(t, keys[0].ReplacedBy == "" && keys[0].RevokedAt.IsZero())
}

// An API key is refused in any key header, even behind a valid login.
func TestRefusesAPIKeys(t *testing.T) {
	h, svc := handler(t, manage.Config{})
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "alice"})
	require.NoError(t, err)
	key := issued.Secret.Reveal()
	for name, header := range map[string][]string{
		"X-API-Key":                      {"X-API-Key", key},
		"Authorization":                  {"Authorization", "Bearer " + key},
		"a second Authorization":         {"Authorization", "Bearer admin-token", "Authorization", "bearer " + key},
		"lower-case scheme, extra space": {"Authorization", "bearer   " + key},
	} {
		status, body := call(h, "GET", "/keys", "alice", "", header...)
		assert.Equal(t, 401, status, name)
		assert.Contains(t, body["error"], "API keys cannot manage API keys", name)
	}
}

func TestNewRejects(t *testing.T) {
	_, err := manage.New(manage.Config{})
	require.ErrorIs(t, err, apikey.ErrInvalidConfig)
}

// A key's custom limits are set at creation and shown with it; bad ones
// are a 400 and create nothing.
func TestCreateWithLimits(t *testing.T) {
	h, svc := handler(t, manage.Config{})
	status, created := call(h, "POST", "/keys", "alice", `{"name":"batch","limits":[{"limit":5,"period_seconds":60},{"limit":1000,"monthly":true}]}`)
	require.Equal(t, 201, status, created)
	want := []any{
		map[string]any{"limit": 5.0, "period_seconds": 60.0},
		map[string]any{"limit": 1000.0, "period_seconds": 0.0, "monthly": true},
	}
	assert.Equal(t, want, created["limits"])
	_, one := call(h, "GET", "/keys/"+created["id"].(string), "alice", "")
	assert.Equal(t, want, one["limits"])

	for body, reason := range map[string]string{
		`{"limits":[{"limit":0,"period_seconds":60}]}`:                "limit 0",
		`{"limits":[{"limit":5,"period_seconds":60,"monthly":true}]}`: "no period",
		`{"limits":[{"limit":5,"period_seconds":60,"remaining":1}]}`:  "read-only",
	} {
		status, out := call(h, "POST", "/keys", "alice", body)
		assert.Equal(t, 400, status, body)
		assert.Contains(t, out["error"], reason, body)
	}
	page, err := svc.ListPage(context.Background(), "alice", "", 100)
	keys := page.Items
	require.NoError(t, err)
	assert.Len(t, keys, 1, "refused creations created nothing")
}
