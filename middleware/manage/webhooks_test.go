package manage_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/middleware/manage"
)

// An account registers, lists, changes, rotates and deletes its webhook
// endpoints; a secret is shown once; another account's endpoint is not
// found; a URL that is not https or reaches a loopback, private,
// link-local or metadata address is refused with 400.
func TestWebhookEndpoints(t *testing.T) {
	h, svc := handler(t, manage.Config{Webhooks: true})
	for _, bad := range []string{
		"http://93.184.216.34/hook", "https://127.0.0.1/hook", "https://localhost/hook", "https://10.1.2.3/hook",
		"https://192.168.0.5/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/hook", "https://[fd00::1]/hook",
		"https://100.64.0.1/hook", "https://0.0.0.0/hook", "ftp://93.184.216.34/", "https://user:pw@93.184.216.34/", "not a url",
	} {
		status, body := call(h, "POST", "/api/v1/webhooks", "acct_1", `{"url":"`+bad+`"}`)
		assert.Equal(t, http.StatusBadRequest, status, "%s: %v", bad, body)
	}
	status, body := call(h, "POST", "/api/v1/webhooks", "acct_1", `{"events":["key.*"]}`)
	assert.Equal(t, http.StatusBadRequest, status, "a URL is required: %v", body)
	status, body = call(h, "POST", "/api/v1/webhooks", "acct_1", `{"url":"https://93.184.216.34/hook","events":["key.*","not valid!"]}`)
	assert.Equal(t, http.StatusBadRequest, status, body)

	status, created := call(h, "POST", "/api/v1/webhooks", "acct_1", `{"url":"https://93.184.216.34/hook","events":["key.revoked","key.expiring"],"description":"ops"}`)
	require.Equal(t, http.StatusCreated, status, created)
	id, secret := created["id"].(string), created["secret"].(string)
	assert.Regexp(t, `^whsec_`, secret)
	assert.Equal(t, "active", created["status"])

	status, list := call(h, "GET", "/api/v1/webhooks", "acct_1", "")
	require.Equal(t, http.StatusOK, status)
	data := list["data"].([]any)
	require.Len(t, data, 1)
	assert.NotContains(t, data[0], "secret")
	status, _ = call(h, "GET", "/api/v1/webhooks/"+id, "acct_2", "")
	assert.Equal(t, http.StatusNotFound, status, "another account's endpoint")
	status, _ = call(h, "DELETE", "/api/v1/webhooks/"+id, "acct_2", "")
	assert.Equal(t, http.StatusNotFound, status)
	status, other := call(h, "GET", "/api/v1/webhooks", "acct_2", "")
	require.Equal(t, http.StatusOK, status, other)

	status, changed := call(h, "PATCH", "/api/v1/webhooks/"+id, "acct_1", `{"disabled":true,"events":["key.*"]}`)
	require.Equal(t, http.StatusOK, status, changed)
	assert.Equal(t, "disabled", changed["status"])
	assert.NotContains(t, changed, "secret")
	status, rotated := call(h, "POST", "/api/v1/webhooks/"+id+"/rotate-secret", "acct_1", "")
	require.Equal(t, http.StatusOK, status, rotated)
	assert.NotEqual(t, secret, rotated["secret"])
	a, err := svc.Account(context.Background(), "acct_1")
	require.NoError(t, err)
	require.Len(t, a.Webhooks, 1)
	assert.Equal(t, []string{rotated["secret"].(string), secret}, a.Webhooks[0].Secrets, "the old secret signs too while the rotation settles")

	for range 9 {
		status, _ := call(h, "POST", "/api/v1/webhooks", "acct_1", `{"url":"https://93.184.216.34/hook"}`)
		require.Equal(t, http.StatusCreated, status)
	}
	status, body = call(h, "POST", "/api/v1/webhooks", "acct_1", `{"url":"https://93.184.216.34/hook"}`)
	assert.Equal(t, http.StatusBadRequest, status, "an 11th endpoint: %v", body)
	status, _ = call(h, "DELETE", "/api/v1/webhooks/"+id, "acct_1", "")
	assert.Equal(t, http.StatusOK, status)
	status, _ = call(h, "GET", "/api/v1/webhooks/"+id, "acct_1", "")
	assert.Equal(t, http.StatusNotFound, status)

	off, _ := handler(t, manage.Config{})
	status, _ = call(off, "GET", "/api/v1/webhooks", "acct_1", "")
	assert.Equal(t, http.StatusNotFound, status, "off by default")
}
