package webhook

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The signature Standard Webhooks' own libraries compute for this
// message, so that what keygate signs verifies anywhere.
func TestSignMatchesTheStandard(t *testing.T) {
	sig, err := Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`),
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
}

func message(t *testing.T, at time.Time, body string, secrets ...string) http.Header {
	t.Helper()
	sig, err := Sign("evt_1", at, []byte(body), secrets...)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	old, current, other := NewSecret(), NewSecret(), NewSecret()
	body := `{"type":"key.revoked"}`
	for _, tc := range []struct {
		name   string
		change func(h http.Header) (secret, body string)
		want   error
	}{
		{"signed", func(http.Header) (string, string) { return current, body }, nil},
		{"signed without the prefix", func(http.Header) (string, string) {
			return strings.TrimPrefix(current, "whsec_"), body
		}, nil},
		{"the old secret, during a rotation", func(http.Header) (string, string) { return old, body }, nil},
		{"another secret", func(http.Header) (string, string) { return other, body }, ErrSignature},
		{"another body", func(http.Header) (string, string) { return current, body + " " }, ErrSignature},
		{"another id", func(h http.Header) (string, string) { h.Set(HeaderID, "evt_2"); return current, body }, ErrSignature},
		{"another timestamp", func(h http.Header) (string, string) {
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return current, body
		}, ErrSignature},
		{"an unknown version only", func(h http.Header) (string, string) {
			h.Set(HeaderSignature, strings.ReplaceAll(h.Get(HeaderSignature), "v1,", "v2,"))
			return current, body
		}, ErrSignature},
		{"other signatures around", func(h http.Header) (string, string) {
			h.Set(HeaderSignature, "v1,AAAA v1a,xyz "+h.Get(HeaderSignature)+" junk")
			return current, body
		}, nil},
		{"too old", func(h http.Header) (string, string) {
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Add(-Tolerance-time.Second).Unix(), 10))
			return current, body
		}, ErrTimestamp},
		{"too new", func(h http.Header) (string, string) {
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Add(Tolerance+time.Second).Unix(), 10))
			return current, body
		}, ErrTimestamp},
		{"no id", func(h http.Header) (string, string) { h.Del(HeaderID); return current, body }, ErrInvalidHeaders},
		{"no timestamp", func(h http.Header) (string, string) { h.Del(HeaderTimestamp); return current, body }, ErrInvalidHeaders},
		{"no signature", func(h http.Header) (string, string) { h.Del(HeaderSignature); return current, body }, ErrInvalidHeaders},
		{"a timestamp that is no number", func(h http.Header) (string, string) {
			h.Set(HeaderTimestamp, "1.9e9")
			return current, body
		}, ErrInvalidHeaders},
		{"a secret that is not base64", func(http.Header) (string, string) { return "whsec_not base64!", body }, ErrInvalidSecret},
		{"an empty secret", func(http.Header) (string, string) { return "whsec_", body }, ErrInvalidSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := message(t, now, body, current, old)
			secret, got := tc.change(h)
			err := verify(secret, h, []byte(got), now)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			if k := strings.TrimPrefix(secret, "whsec_"); k != "" {
				assert.NotContains(t, err.Error(), k, "an error never holds the secret")
			}
		})
	}
}

func TestSignRefusesBadSecrets(t *testing.T) {
	for name, secrets := range map[string][]string{
		"none":           nil,
		"not base64":     {"whsec_???"},
		"a 16-byte key":  {"whsec_AAAAAAAAAAAAAAAAAAAAAA=="},
		"a 65-byte key":  {"whsec_" + strings.Repeat("A", 88)},
		"one bad of two": {NewSecret(), "whsec_"},
	} {
		_, err := Sign("evt_1", time.Unix(1, 0), nil, secrets...)
		require.ErrorIs(t, err, ErrInvalidSecret, name)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "whsec_"))
	k, err := key(a)
	require.NoError(t, err)
	assert.Len(t, k, 32)
}

// Whatever a sender puts in the headers, Verify answers without
// panicking, and passes only a message the secret signed.
func FuzzVerify(f *testing.F) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("", "-1", "v1,", []byte(nil))
	f.Add("a", "99999999999999999999", "v1 ,, v1,x v2,y", []byte("{}"))
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, stamp, sigs string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, stamp)
		h.Set(HeaderSignature, sigs)
		if verify(secret, h, body, now) != nil {
			return
		}
		ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
		require.NoError(t, err)
		want, err := Sign(h.Get(HeaderID), time.Unix(ts, 0), body, secret)
		require.NoError(t, err)
		require.Contains(t, strings.Fields(h.Get(HeaderSignature)), want, "a message passed that the secret did not sign")
	})
}
