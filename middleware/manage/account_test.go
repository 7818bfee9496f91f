package manage_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/internal/testclock"
	"github.com/keygate/keygate/middleware/manage"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

// The account endpoint shows the plan's windows with where they stand,
// and PUT (when the host allows it) sets the plan, custom limits and
// credits, creating the account the login vouches for.
func TestAccountEndpoint(t *testing.T) {
	clock := testclock.New(time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC))
	svc, err := apikey.New(memstore.New(), apikey.Config{Plans: ratelimit.DefaultPlans(), Clock: clock.Now})
	require.NoError(t, err)
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: clock.Now})
	t.Cleanup(func() { _ = limiter.Close() })
	h, _ := handler(t, manage.Config{Service: svc, Limiter: limiter, Clock: clock.Now, AccountUpdates: true})

	status, a := call(h, "GET", "/api/v1/account", "alice", "")
	require.Equal(t, 200, status, a)
	assert.Equal(t, "free", a["plan"], "a new account is on the free plan")
	assert.Equal(t, []any{
		map[string]any{"limit": 10.0, "period_seconds": 60.0, "remaining": 10.0, "reset": "2030-01-02T10:00:00Z"},
		map[string]any{"limit": 1000.0, "period_seconds": 86400.0, "remaining": 1000.0, "reset": "2030-01-03T00:00:00Z"},
	}, a["limits"])
	assert.Nil(t, a["credits"])

	status, a = call(h, "PUT", "/api/v1/account", "alice", `{"plan":"business"}`)
	require.Equal(t, 200, status, a)
	assert.Equal(t, "business", a["plan"])

	// The Enterprise override: custom limits replace the plan's windows.
	status, a = call(h, "PUT", "/api/v1/account", "alice", `{"limits":[{"limit":5000,"period_seconds":60},{"limit":10000000,"monthly":true}]}`)
	require.Equal(t, 200, status, a)
	assert.Equal(t, true, a["custom_limits"])
	require.Len(t, a["limits"], 2)
	assert.Equal(t, map[string]any{"limit": 1e7, "period_seconds": 0.0, "monthly": true, "remaining": 1e7, "reset": "2030-02-01T00:00:00Z"}, a["limits"].([]any)[1])

	status, a = call(h, "PUT", "/api/v1/account", "alice", `{"credits":{"balance":1000,"refill_amount":1000,"refill_period":"month"}}`)
	require.Equal(t, 200, status, a)
	assert.Equal(t, map[string]any{
		"balance": 1000.0, "refill_amount": 1000.0, "refill_period": "month", "refill_mode": "replace", "refill_at": "2030-02-01T00:00:00Z",
		"granted_at": "2030-01-02T10:00:00Z",
	}, a["credits"])
	// Spent through the limiter, shown as it stands.
	acct, err := svc.Account(t.Context(), "alice")
	require.NoError(t, err)
	policy, _ := ratelimit.DefaultPlans().Lookup(acct.Plan)
	d, err := limiter.Allow(t.Context(), ratelimit.Request{Account: "alice", AccountPolicy: policy, Credits: acct.Credits, Key: "k", Cost: 3})
	require.NoError(t, err)
	require.True(t, d.Allowed)
	status, a = call(h, "PUT", "/api/v1/account", "alice", `{"limits":[]}`)
	require.Equal(t, 200, status, a)
	assert.Equal(t, false, a["custom_limits"])
	assert.Equal(t, 997.0, a["credits"].(map[string]any)["balance"], "a change of limits keeps the balance")

	for body, want := range map[string]string{
		`{"plan":"gold"}`: "Invalid plan",
		`{"limits":[{"limit":0,"period_seconds":60}]}`:                                                          "Invalid limits",
		`{"limits":[{"limit":5,"period_seconds":60,"monthly":true}]}`:                                           "Invalid limits",
		`{"credits":{"balance":10,"refill_amount":5}}`:                                                          "Invalid credits",
		`{"credits":{"balance":10,"refill_amount":5,"refill_period":"day","refill_at":"2029-01-01T00:00:00Z"}}`: "Invalid credits",
		`{"limits":[{"limit":5,"period_seconds":60,"remaining":3}]}`:                                            "read-only",
		`{"owner":"bob"}`: "unknown field",
		// Misspelled fields of the nested objects are refused as those
		// of the top level are, never read as absent.
		`{"credits":{"balanse":1000}}`: "unknown field",
		`{"credits":{"balance":10,"refill_amount":5,"refill_period":"day","refil_mode":"add"}}`: "unknown field",
		`{"limits":[{"limit":5,"period_secs":60}]}`:                                             "unknown field",
		// Values past what a window or a refill instant can hold.
		`{"limits":[{"limit":5,"period_seconds":36028797018963028}]}`:                                           "Invalid limits",
		`{"credits":{"balance":10,"refill_amount":5,"refill_period":"day","refill_at":"2300-01-01T00:00:00Z"}}`: "Invalid credits",
	} {
		status, out := call(h, "PUT", "/api/v1/account", "alice", body)
		assert.Equal(t, 400, status, body)
		assert.Contains(t, out["error"], want, body)
	}
	status, a = call(h, "GET", "/api/v1/account", "alice", "")
	require.Equal(t, 200, status)
	assert.Equal(t, "business", a["plan"], "bad input changed nothing")
	assert.Equal(t, 997.0, a["credits"].(map[string]any)["balance"])

	status, _ = call(h, "GET", "/api/v1/account", "", "")
	assert.Equal(t, 401, status)
	status, _ = call(h, "GET", "/api/v1/account", "alice", "", "Authorization", "Bearer "+issue(t, svc))
	assert.Equal(t, 401, status, "an API key never reaches the account endpoint")
}

// Without AccountUpdates the account is read-only.
func TestAccountEndpointReadOnly(t *testing.T) {
	h, _ := handler(t, manage.Config{})
	r := httptest.NewRequest("PUT", "/api/v1/account", strings.NewReader(`{"plan":"business"}`))
	r.Header.Set("X-User", "alice")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 405, w.Code)
	assert.Equal(t, "GET", w.Header().Get("Allow"))
}

func issue(t *testing.T, svc *apikey.Service) string {
	t.Helper()
	issued, err := svc.Create(t.Context(), apikey.CreateParams{Owner: "alice"})
	require.NoError(t, err)
	return issued.Secret.Reveal()
}
