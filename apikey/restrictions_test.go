package apikey_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keygate/keygate/apikey"
)

func TestRestrictions(t *testing.T) {
	t.Parallel()
	r := apikey.Restrictions{
		AllowedIPs:       []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		AllowedReferrers: []string{"app.example.com", "*.example.org"},
		AllowedEndpoints: []string{"GET /api/v1/recordings", "* /api/v1/health", "POST /api/v1/uploads/*"},
	}
	ipTests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"11.0.0.1", false},
		{"2001:db8::5", true},
		{"2001:db9::5", false},
	}
	for _, tc := range ipTests {
		assert.Equal(t, tc.want, r.AllowsIP(netip.MustParseAddr(tc.addr)), tc.addr)
	}
	refTests := []struct {
		referer string
		want    bool
	}{
		{"https://app.example.com/page", true},
		{"https://APP.example.com:8443/page?q=1", true},
		{"https://user@app.example.com/", true},
		{"https://evil.com/?app.example.com", false},
		{"https://app.example.com.evil.com/", false},
		{"https://a.example.org/", true},
		{"https://a.b.example.org/", true},
		{"https://example.org/", false},
		{"https://badexample.org/", false},
		{"", false},
		{"https://[::1]:80/", false},
		{`https://evil.com\@app.example.com`, false}, // browsers read the host as evil.com
		{`https://evil.com\@app.example.com/`, false},
		{"https://evil.com%40app.example.com/", false},
	}
	for _, tc := range refTests {
		assert.Equal(t, tc.want, r.AllowsReferrer(tc.referer), tc.referer)
	}
	epTests := []struct {
		method, pattern string
		want            bool
	}{
		{"GET", "/api/v1/recordings", true},
		{"POST", "/api/v1/recordings", false},
		{"GET", "/api/v1/recordings/{id}", false},
		{"DELETE", "/api/v1/health", true},
		{"POST", "/api/v1/uploads/a/b", true},
		{"GET", "/api/v1/uploads/a", false},
	}
	for _, tc := range epTests {
		assert.Equal(t, tc.want, r.AllowsEndpoint(tc.method, tc.pattern), tc.method+" "+tc.pattern)
	}

	var none apikey.Restrictions
	assert.True(t, none.IsZero())
	assert.True(t, none.AllowsIP(netip.MustParseAddr("1.2.3.4")))
	assert.True(t, none.AllowsReferrer(""))
	assert.True(t, none.AllowsEndpoint("DELETE", "/anything"))
}
