package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/store/memstore"
)

// noUsageStore hides the memory store's usage capability.
type noUsageStore struct{ apikey.Store }

func management(t *testing.T, store apikey.Store) (http.Handler, *apikey.Service) {
	t.Helper()
	svc, err := apikey.New(store, apikey.Config{})
	require.NoError(t, err)
	h, err := middleware.NewManagement(middleware.ManagementConfig{
		Service: svc,
		Prefix:  "/keys",
		Authenticate: func(r *http.Request) (string, bool) {
			account := r.Header.Get("X-User")
			return account, account != ""
		},
	})
	require.NoError(t, err)
	return h, svc
}

func call(h http.Handler, method, path, user, body string) (int, map[string]any) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if user != "" {
		r.Header.Set("X-User", user)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestManagementLifecycle(t *testing.T) {
	h, _ := management(t, memstore.New())
	status, created := call(h, "POST", "/keys", "alice", `{"name":"ci","permissions":["read"],"allowed_ips":["10.0.0.1"],"expires_at":"2099-01-01T00:00:00Z"}`)
	require.Equal(t, 201, status, created)
	id := created["id"].(string)
	assert.Equal(t, []any{"10.0.0.1/32"}, created["allowed_ips"])
	assert.Equal(t, "2099-01-01T00:00:00Z", created["expires_at"])

	status, one := call(h, "GET", "/keys/"+id, "alice", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "active", one["status"])
	assert.NotContains(t, one, "api_key")

	status, _ = call(h, "GET", "/keys/"+id, "bob", "")
	assert.Equal(t, 404, status, "another account's key")

	status, u := call(h, "GET", "/keys/"+id+"/usage", "alice", "")
	assert.Equal(t, 200, status)
	assert.EqualValues(t, 0, u["total_requests"])
	assert.Nil(t, u["last_used_at"])

	status, rotated := call(h, "POST", "/keys/"+id+"/rotate", "alice", `{"grace_period_seconds":60}`)
	require.Equal(t, 201, status, rotated)
	assert.NotEqual(t, id, rotated["id"])
	assert.NotEmpty(t, rotated["api_key"])
	status, again := call(h, "POST", "/keys/"+id+"/rotate", "alice", "")
	assert.Equal(t, 409, status, "a rotated key cannot be rotated again")
	assert.Contains(t, again["error"], "revoked or expired")

	status, revoked := call(h, "DELETE", "/keys/"+rotated["id"].(string), "alice", "")
	assert.Equal(t, 200, status)
	assert.Equal(t, "API key revoked successfully", revoked["message"])
	status, list := call(h, "GET", "/keys", "alice", "")
	assert.Equal(t, 200, status)
	assert.Len(t, list["data"], 2)
}

func TestManagementBadInput(t *testing.T) {
	h, svc := management(t, memstore.New())
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
		{"negative grace", "POST", "/keys/" + id + "/rotate", "alice", `{"grace_period_seconds":-1}`, 400, "grace_period_seconds"},
		{"grace over 30 days", "POST", "/keys/" + id + "/rotate", "alice", `{"grace_period_seconds":99999999}`, 400, "grace_period_seconds"},
		{"unknown id", "GET", "/keys/nope", "alice", "", 404, "API key not found"},
		{"rotate unknown id", "POST", "/keys/nope/rotate", "alice", "", 404, "API key not found"},
		{"usage of another account's key", "GET", "/keys/" + id + "/usage", "bob", "", 404, "API key not found"},
	}
	for _, tc := range tests {
		status, body := call(h, tc.method, tc.path, tc.user, tc.body)
		assert.Equal(t, tc.status, status, tc.name)
		assert.Contains(t, body["error"], tc.msg, tc.name)
	}
	keys, err := svc.List(context.Background(), "alice")
	require.NoError(t, err)
	assert.Len(t, keys, 1, "nothing changed")
	assert.True(t, keys[0].ReplacedBy == "" && keys[0].RevokedAt.IsZero())
}

func TestManagementUsageUnsupported(t *testing.T) {
	h, svc := management(t, noUsageStore{memstore.New()})
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "alice"})
	require.NoError(t, err)
	status, body := call(h, "GET", "/keys/"+issued.Key.ID+"/usage", "alice", "")
	assert.Equal(t, 501, status)
	assert.Contains(t, body["error"], "not recorded")
}

func TestNewManagementRejects(t *testing.T) {
	_, err := middleware.NewManagement(middleware.ManagementConfig{})
	require.Error(t, err)
}
