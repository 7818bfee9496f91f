package manage_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware/manage"
	"github.com/keygate/keygate/store/memstore"
)

func TestUpdateDisableEnable(t *testing.T) {
	h, svc := handler(t, manage.Config{})
	status, created := call(h, "POST", "/keys", "alice",
		`{"name":"ci","permissions":["read"],"metadata":{"team":"infra"},"not_before":"2020-01-01T00:00:00Z"}`)
	require.Equal(t, 201, status, created)
	id, key := created["id"].(string), created["api_key"].(string)
	assert.Equal(t, map[string]any{"team": "infra"}, created["metadata"])
	assert.Equal(t, "2020-01-01T00:00:00Z", created["not_before"])

	status, updated := call(h, "PATCH", "/keys/"+id, "alice",
		`{"name":"deploy","permissions":["read","write"],"expires_at":"2099-01-01T00:00:00Z","metadata":null,"allowed_ips":["10.0.0.0/8"]}`)
	require.Equal(t, 200, status, updated)
	assert.Equal(t, "deploy", updated["name"])
	assert.Equal(t, []any{"read", "write"}, updated["permissions"])
	assert.Equal(t, "2099-01-01T00:00:00Z", updated["expires_at"])
	assert.Equal(t, []any{"10.0.0.0/8"}, updated["allowed_ips"])
	assert.NotContains(t, updated, "metadata", "null cleared it")
	assert.NotContains(t, updated, "api_key", "an update never shows the key")
	p, err := svc.Verify(t.Context(), key)
	require.NoError(t, err)
	assert.True(t, p.Has(apikey.Write))

	status, _ = call(h, "PATCH", "/keys/"+id, "alice", `{"expires_at":null}`)
	require.Equal(t, 200, status)

	for _, tc := range []struct{ body, want string }{
		{`{"environment":"test"}`, "environment cannot change"},
		{`{"owner":"bob"}`, "owner cannot change"},
		{`{"colour":"red"}`, `Unknown field "colour"`},
		{`{"name":42}`, "Invalid name"},
		{`{"permissions":["launch"]}`, "Invalid permissions"},
		{`{"expires_at":"tomorrow"}`, "Invalid expires_at"},
		{`{"expires_at":"2001-01-01T00:00:00Z"}`, "Invalid expires_at"},
		{`{"allowed_ips":["nope"]}`, "Invalid allowed_ips"},
		{`{"name":"x"`, "invalid JSON"},
	} {
		status, body := call(h, "PATCH", "/keys/"+id, "alice", tc.body)
		assert.Equal(t, 400, status, tc.body)
		assert.Contains(t, fmt.Sprint(body["error"]), tc.want, tc.body)
	}
	k, err := svc.Get(t.Context(), "alice", id)
	require.NoError(t, err)
	assert.Equal(t, "deploy", k.Name, "refused updates changed nothing")

	status, _ = call(h, "PATCH", "/keys/"+id, "bob", `{"name":"mine"}`)
	assert.Equal(t, 404, status, "another account's key")

	status, disabled := call(h, "POST", "/keys/"+id+"/disable", "alice", "")
	require.Equal(t, 200, status, disabled)
	assert.Equal(t, "disabled", disabled["status"])
	assert.NotEmpty(t, disabled["disabled_at"])
	_, err = svc.Verify(t.Context(), key)
	assert.ErrorIs(t, err, apikey.ErrInvalidKey)
	status, body := call(h, "POST", "/keys/"+id+"/rotate", "alice", "")
	assert.Equal(t, 409, status)
	assert.Equal(t, "API key is disabled; enable it first", body["error"])
	status, enabled := call(h, "POST", "/keys/"+id+"/enable", "alice", "")
	require.Equal(t, 200, status)
	assert.Equal(t, "active", enabled["status"])
	assert.NotContains(t, enabled, "disabled_at")
	_, err = svc.Verify(t.Context(), key)
	assert.NoError(t, err)

	status, _ = call(h, "DELETE", "/keys/"+id, "alice", "")
	require.Equal(t, 200, status)
	status, body = call(h, "PATCH", "/keys/"+id, "alice", `{"name":"again"}`)
	assert.Equal(t, 409, status)
	assert.Equal(t, "API key is revoked", body["error"])
	status, _ = call(h, "POST", "/keys/"+id+"/enable", "alice", "")
	assert.Equal(t, 409, status)
}

func TestListPages(t *testing.T) {
	h, _ := handler(t, manage.Config{})
	var ids []string
	for i := range 7 {
		status, created := call(h, "POST", "/keys", "alice", fmt.Sprintf(`{"name":"k%d"}`, i))
		require.Equal(t, 201, status, created)
		ids = append(ids, created["id"].(string))
		if i < 3 { // keep under the 10 active keys
			status, _ = call(h, "DELETE", "/keys/"+created["id"].(string), "alice", "")
			require.Equal(t, 200, status)
		}
	}
	var seen []string
	cursor := ""
	for range 10 {
		status, page := call(h, "GET", "/keys?limit=3&cursor="+cursor, "alice", "")
		require.Equal(t, 200, status, page)
		for _, k := range page["data"].([]any) {
			seen = append(seen, k.(map[string]any)["id"].(string))
		}
		if page["next_cursor"] == nil {
			break
		}
		cursor = page["next_cursor"].(string)
	}
	assert.Equal(t, ids, seen, "every key once, oldest first, in pages of 3")

	status, page := call(h, "GET", "/keys", "alice", "")
	require.Equal(t, 200, status)
	assert.Len(t, page["data"], 7)
	assert.Nil(t, page["next_cursor"])

	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=%2e%2e", "cursor=bm90LWEtY3Vyc29y"} {
		status, body := call(h, "GET", "/keys?"+q, "alice", "")
		assert.Equal(t, 400, status, q)
		assert.NotEmpty(t, body["error"], q)
	}
}

func TestEvents(t *testing.T) {
	h, _ := handler(t, manage.Config{
		Actor: func(r *http.Request) apikey.Actor {
			return apikey.Actor{ID: r.Header.Get("X-User"), IP: "198.51.100.4"}
		},
	})
	status, created := call(h, "POST", "/keys", "alice", `{"name":"ci"}`)
	require.Equal(t, 201, status)
	id, key := created["id"].(string), created["api_key"].(string)
	call(h, "PATCH", "/keys/"+id, "alice", `{"name":"deploy"}`)
	call(h, "POST", "/keys/"+id+"/disable", "alice", "")
	call(h, "POST", "/keys/"+id+"/enable", "alice", "")
	status, rotated := call(h, "POST", "/keys/"+id+"/rotate", "alice", "")
	require.Equal(t, 201, status)
	call(h, "DELETE", "/keys/"+rotated["id"].(string), "alice", "")
	call(h, "POST", "/keys", "bob", `{"name":"bob's"}`)

	r := httptest.NewRequest("GET", "/keys/events?limit=100", nil)
	r.Header.Set("X-User", "alice")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, 200, w.Code)
	raw := w.Body.String()
	assert.NotContains(t, raw, key)
	assert.NotContains(t, raw, rotated["api_key"].(string))
	assert.NotContains(t, raw, "bob's", "another account's events")

	_, page := call(h, "GET", "/keys/events", "alice", "")
	var types []string
	for _, e := range page["data"].([]any) {
		ev := e.(map[string]any)
		types = append(types, ev["type"].(string))
		assert.Equal(t, "alice", ev["actor"])
		assert.Equal(t, "198.51.100.4", ev["ip"])
	}
	assert.Equal(t, []string{"key.revoked", "key.rotated", "key.enabled", "key.disabled", "key.updated", "key.created"}, types)

	_, page = call(h, "GET", "/keys/"+id+"/events?limit=2", "alice", "")
	require.Len(t, page["data"], 2)
	first := page["data"].([]any)[0].(map[string]any)
	assert.Equal(t, "key.rotated", first["type"])
	assert.Equal(t, map[string]any{"new": rotated["id"]}, first["changes"].(map[string]any)["replaced_by"])
	require.NotNil(t, page["next_cursor"])
	_, next := call(h, "GET", "/keys/"+id+"/events?cursor="+page["next_cursor"].(string), "alice", "")
	assert.Len(t, next["data"], 3, "disabled, updated and created")

	status, body := call(h, "GET", "/keys/events?cursor=abc", "alice", "")
	assert.Equal(t, 400, status)
	assert.True(t, strings.HasPrefix(body["error"].(string), "Invalid cursor"), body)
	status, page = call(h, "GET", "/keys/no-such-key/events", "alice", "")
	assert.Equal(t, 200, status)
	assert.Empty(t, page["data"])
}

// A store without the audit trail (or accounts) answers 501, not 503.
func TestUnsupportedCapabilities(t *testing.T) {
	svc, err := apikey.New(struct{ apikey.Store }{memstore.New()}, apikey.Config{})
	require.NoError(t, err)
	h, _ := handler(t, manage.Config{Service: svc, AccountUpdates: true})
	for _, path := range []string{"/keys/events", "/keys/some-id/events"} {
		status, body := call(h, "GET", path, "alice", "")
		assert.Equal(t, 501, status, path)
		assert.Equal(t, "Not supported by this service's key store", body["error"], path)
	}
	status, body := call(h, "PUT", "/api/v1/account", "alice", `{"plan":"free"}`)
	assert.Equal(t, 501, status, body)
}
