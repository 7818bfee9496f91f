package ratelimit

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// Header names, in the canonical form net/http stores and sends.
const (
	HeaderLimit      = "X-Ratelimit-Limit"
	HeaderRemaining  = "X-Ratelimit-Remaining"
	HeaderReset      = "X-Ratelimit-Reset"
	HeaderRetryAfter = "Retry-After"
	HeaderPolicy     = "Ratelimit-Policy"
	HeaderRateLimit  = "Ratelimit"
)

// IETFVersion selects the IETF RateLimit header fields, whose draft still
// changes; the zero value writes none.
type IETFVersion int

// The supported IETF syntaxes.
const (
	// IETFNone writes no IETF fields.
	IETFNone IETFVersion = iota
	// IETFDraft10 writes draft-ietf-httpapi-ratelimit-headers-10 (also
	// the syntax of drafts 08, 09 and 11): one list item per window,
	//	RateLimit-Policy: "min";q=60;w=60, "day";q=10000;w=86400
	//	RateLimit: "min";r=59;t=1, "day";r=9999;t=50400
	IETFDraft10
)

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up: never
// 0 for a denied request, 0 for an allowed one.
func (d *Decision) RetryAfterSeconds() int64 {
	if d.Allowed {
		return 0
	}
	return max(ceilSeconds(int64(d.RetryAfter)), 1)
}

func ceilSeconds(ns int64) int64 { return (ns + int64(time.Second) - 1) / int64(time.Second) }

// SetHeaders writes X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (Unix seconds, rounded up) for the tightest window,
// and Retry-After on a denial. It assigns canonical keys directly and
// allocates once, a [Headers] (each window's limit is formatted when its
// policy is made), where three Header.Set calls with strconv allocate
// seven times. A failed-open or zero decision writes nothing.
func SetHeaders(h http.Header, d *Decision) {
	if d.NumWindows() > 0 {
		new(Headers).Set(h, d)
	}
}

// Headers is the storage of the values [SetHeaders] writes: the value
// slices and their digits share it. A caller that already allocates an
// object per request can embed a Headers in it and call Set, saving
// SetHeaders' allocation. The header values point into it, so it must not
// be reused for another response.
type Headers struct {
	vals [4]string
	// A remaining count of up to 13 digits, a reset time (10) and a
	// Retry-After fit; longer values spill into an allocation of their own.
	buf [24]byte
}

// Set is [SetHeaders] with v as its storage.
func (v *Headers) Set(h http.Header, d *Decision) {
	if d.NumWindows() == 0 {
		return
	}
	b := v.buf[:0]
	v.vals[0] = d.Policy.windows[d.Tightest].limitText
	if d.Limit != d.Policy.windows[d.Tightest].Limit {
		// A Decision assembled by hand: say what it says.
		b, v.vals[0] = appendText(b, d.Limit)
	}
	b, v.vals[1] = appendText(b, d.Remaining)
	b, v.vals[2] = appendText(b, ceilSeconds(d.Reset.UnixNano()))
	h[HeaderLimit] = v.vals[0:1:1]
	h[HeaderRemaining] = v.vals[1:2:2]
	h[HeaderReset] = v.vals[2:3:3]
	if !d.Allowed {
		_, v.vals[3] = appendText(b, d.RetryAfterSeconds())
		h[HeaderRetryAfter] = v.vals[3:4:4]
	}
}

// appendText appends n in decimal to b and returns the digits as a string
// that shares b's memory. The bytes are never written again: later
// appends go after them, or to a new array when b is full, which is what
// strings.Builder relies on too.
func appendText(b []byte, n int64) ([]byte, string) {
	i := len(b)
	b = strconv.AppendInt(b, n, 10)
	return b, unsafe.String(&b[i], len(b)-i)
}

// SetIETFHeaders writes the IETF RateLimit-Policy and RateLimit fields of
// version v, one list item per window of the policy.
func SetIETFHeaders(h http.Header, d *Decision, v IETFVersion) {
	n := d.NumWindows()
	if v != IETFDraft10 || n == 0 {
		return
	}
	var pbuf, rbuf [256]byte
	policy, limit := pbuf[:0], rbuf[:0]
	for i := range n {
		w := &d.Policy.windows[i]
		if i > 0 {
			policy = append(policy, ", "...)
			limit = append(limit, ", "...)
		}
		policy = strconv.AppendQuote(policy, w.Name)
		policy = append(policy, ";q="...)
		policy = strconv.AppendInt(policy, w.Limit, 10)
		policy = append(policy, ";w="...)
		policy = strconv.AppendInt(policy, ceilSeconds(int64(w.Period)), 10)

		ws := &d.windows[i]
		limit = strconv.AppendQuote(limit, w.Name)
		limit = append(limit, ";r="...)
		limit = strconv.AppendInt(limit, ws.remaining, 10)
		limit = append(limit, ";t="...)
		limit = strconv.AppendInt(limit, max(ceilSeconds(ws.reset-d.decidedAt), 0), 10)
	}
	h[HeaderPolicy] = []string{string(policy)}
	h[HeaderRateLimit] = []string{string(limit)}
}
