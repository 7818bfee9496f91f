package manage

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/memstore"
)

type spec struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

// served returns a handler with every endpoint on, its store, and its
// description as it serves it.
func served(t *testing.T) (*Handler, *apikey.Service, spec) {
	t.Helper()
	store := memstore.New()
	svc, err := apikey.New(store, apikey.Config{Plans: ratelimit.DefaultPlans()})
	require.NoError(t, err)
	deliveries, err := webhook.NewAccounts(webhook.AccountsConfig{Log: store,
		Endpoints: func(ctx context.Context, account string) ([]event.Endpoint, error) {
			a, err := svc.Account(ctx, account)
			return a.Webhooks, err
		}})
	require.NoError(t, err)
	h, err := New(Config{Service: svc, Usage: store, Webhooks: true, AccountUpdates: true, WebhookDeliveries: deliveries,
		Authenticate: func(r *http.Request) (string, bool) { return r.Header.Get("X-User"), r.Header.Get("X-User") != "" }})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/api-keys/openapi.json", nil))
	require.Equal(t, http.StatusOK, w.Code, "served without signing in")
	var s spec
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &s))
	return h, svc, s
}

// Every route the handler serves is described, and every route described
// is served.
func TestOpenAPIRoutes(t *testing.T) {
	h, _, s := served(t)
	var described []string
	for path, ops := range s.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	routes := slices.Clone(h.routes)
	sort.Strings(described)
	sort.Strings(routes)
	assert.Equal(t, routes, described)
}

// jsonFields returns the JSON names of a struct type's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name != "":
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (s spec) properties(t *testing.T, schema string) []string {
	t.Helper()
	sc, ok := s.Components.Schemas[schema]
	require.True(t, ok, "schema %s is described", schema)
	var out []string
	for name := range sc.Properties {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every field the endpoints read or write is described, and every field
// described is one they read or write: from the types they encode and
// decode, and from real answers where they build a map.
func TestOpenAPIFields(t *testing.T) {
	h, svc, s := served(t)
	for schema, v := range map[string]any{
		"Key": keyJSON{}, "Limit": limitJSON{}, "Account": accountJSON{}, "Endpoint": endpointJSON{}, "Attempt": attemptJSON{},
		"KeyCreate": createRequest{}, "EndpointRequest": endpointRequest{}, "AccountUpdate": putAccountRequest{},
		"Event": event.Event{}, "Change": event.Change{},
	} {
		assert.Equal(t, s.properties(t, schema), jsonFields(reflect.TypeOf(v)), schema)
	}
	var patchable []string
	for name := range patchFields {
		patchable = append(patchable, name)
	}
	sort.Strings(patchable)
	assert.Equal(t, s.properties(t, "KeyUpdate"), patchable, "KeyUpdate")
	full, err := json.Marshal(ratelimit.Credits{Balance: 1, Granted: time.Now(), Refill: 2, Monthly: true, RefillAt: time.Now(), Add: true})
	require.NoError(t, err)
	var credits map[string]any
	require.NoError(t, json.Unmarshal(full, &credits))
	assert.Equal(t, s.properties(t, "Credits"), keys(credits), "Credits")

	call := func(method, path, body string) map[string]any {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("X-User", "acct_spec")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Less(t, w.Code, 300, "%s %s: %s", method, path, w.Body.String())
		var out map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
		return out
	}
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct_spec"})
	require.NoError(t, err)
	ep := call("POST", "/api/v1/webhooks", `{"url":"https://93.184.216.34/hook"}`)
	for schema, answer := range map[string]map[string]any{
		"Usage":        call("GET", "/api/v1/api-keys/"+issued.Key.ID+"/usage", ""),
		"KeyList":      call("GET", "/api/v1/api-keys", ""),
		"EventList":    call("GET", "/api/v1/api-keys/events", ""),
		"EndpointList": call("GET", "/api/v1/webhooks", ""),
		"AttemptList":  call("GET", "/api/v1/webhooks/"+ep["id"].(string)+"/deliveries", ""),
		"Success":      call("DELETE", "/api/v1/api-keys/"+issued.Key.ID, ""),
	} {
		assert.Equal(t, s.properties(t, schema), keys(answer), schema)
	}
}

// Mounted elsewhere, the handler describes its own paths.
func TestOpenAPIFollowsTheMount(t *testing.T) {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	require.NoError(t, err)
	h, err := New(Config{Service: svc, Prefix: "/keys", AccountPath: "/me", Webhooks: true, WebhooksPath: "/hooks",
		Authenticate: func(*http.Request) (string, bool) { return "", false }})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/keys/openapi.json", nil))
	require.Equal(t, http.StatusOK, w.Code)
	var s spec
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &s))
	for _, p := range []string{"/keys", "/keys/{id}", "/me", "/hooks", "/hooks/{id}/deliveries"} {
		assert.Contains(t, s.Paths, p)
	}
	assert.NotContains(t, w.Body.String(), "/api/v1/")
}
