// Package webhook signs and verifies webhook messages as Standard
// Webhooks 1.0 defines them (https://www.standardwebhooks.com), the
// scheme keygate's webhooks use, so that any Standard Webhooks library,
// in any language, verifies what keygate sends.
//
// A message is its body and three headers: webhook-id (the event's ID,
// the same on every retry, so that a receiver can drop duplicates),
// webhook-timestamp (Unix seconds) and webhook-signature, a
// space-separated list of "v1,<base64 HMAC-SHA256>" over
// "<id>.<timestamp>.<body>", one per secret while a secret rotates. A
// secret reads "whsec_" followed by the base64 of its key.
//
// A receiver in Go calls [Verify] with the raw body, before decoding it.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Tolerance is how far a message's timestamp may be from the receiver's
// clock, either way: a replayed message older than this is refused.
const Tolerance = 5 * time.Minute

// Errors of [Verify] and [Sign], matched with errors.Is.
var (
	// ErrInvalidSecret reports a secret that is not "whsec_" (optional)
	// followed by the standard base64 of at least one byte; [Sign] also
	// refuses a key shorter than 24 bytes or longer than 64.
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	// ErrInvalidHeaders reports a message without its three headers, or
	// with a timestamp that is not a number of seconds.
	ErrInvalidHeaders = errors.New("webhook: missing or malformed headers")
	// ErrTimestamp reports a message signed more than [Tolerance] from
	// now.
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrSignature reports a message none of whose signatures the
	// secret made.
	ErrSignature = errors.New("webhook: no valid signature")
)

const secretPrefix = "whsec_"

// NewSecret returns a new secret: "whsec_" and the base64 of 32 bytes
// from crypto/rand.
func NewSecret() string {
	var key [32]byte
	_, _ = rand.Read(key[:]) // crypto/rand.Read never fails
	return secretPrefix + base64.StdEncoding.EncodeToString(key[:])
}

// key decodes secret.
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil || len(k) == 0 {
		return nil, ErrInvalidSecret
	}
	return k, nil
}

// sum returns the base64 HMAC-SHA256 of the message under k.
func sum(k []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, k)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the webhook-signature header of the message id sent at at
// (to the second) with body: one signature per secret, in order, as a
// sender gives them while a secret rotates. It fails with
// [ErrInvalidSecret] for no secret or a bad one.
func Sign(id string, at time.Time, body []byte, secrets ...string) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: none given", ErrInvalidSecret)
	}
	sigs := make([]string, len(secrets))
	for i, secret := range secrets {
		k, err := key(secret)
		if err != nil {
			return "", err
		}
		if len(k) < 24 || len(k) > 64 {
			return "", fmt.Errorf("%w: a key of %d bytes, not 24 to 64", ErrInvalidSecret, len(k))
		}
		sigs[i] = "v1," + sum(k, id, at.Unix(), body)
	}
	return strings.Join(sigs, " "), nil
}

// Verify checks a received message, its headers h and raw body, against
// secret: it passes when one of its signatures is secret's and its
// timestamp is within [Tolerance] of the current time. It fails with
// [ErrInvalidSecret], [ErrInvalidHeaders], [ErrTimestamp] or
// [ErrSignature]. Compare the webhook-id with the ones already handled to
// drop a retry of a message that was handled.
func Verify(secret string, h http.Header, body []byte) error {
	return verify(secret, h, body, time.Now())
}

// verify is Verify at now.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	k, err := key(secret)
	if err != nil {
		return err
	}
	id, stamp, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || stamp == "" || sigs == "" {
		return ErrInvalidHeaders
	}
	ts, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil || ts < 0 {
		return ErrInvalidHeaders
	}
	at := time.Unix(ts, 0)
	if at.Before(now.Add(-Tolerance)) || at.After(now.Add(Tolerance)) {
		return ErrTimestamp
	}
	want := []byte(sum(k, id, ts, body))
	for sig := range strings.FieldsSeq(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if ok && version == "v1" && hmac.Equal([]byte(value), want) {
			return nil
		}
	}
	return ErrSignature
}
