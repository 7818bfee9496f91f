package ratelimit

import (
	"net/http"
	"strconv"

	"github.com/keygate/keygate/internal/headers"
)

// IETFVersion selects the IETF RateLimit header fields, whose draft still
// changes; the zero value writes none.
type IETFVersion int

// The supported IETF syntaxes.
const (
	// IETFNone writes no IETF fields.
	IETFNone IETFVersion = iota
	// IETFDraft10 writes draft-ietf-httpapi-ratelimit-headers-10 (also
	// the syntax of drafts 08, 09 and 11) for the binding window:
	//	RateLimit-Policy: "min";q=60;w=60
	//	RateLimit: "min";r=59;t=1
	IETFDraft10
)

// SetHeaders writes X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (Unix seconds, rounded up) of the binding window, and
// Retry-After (seconds, rounded up) on a denial. A failed-open or zero
// Decision writes nothing.
func SetHeaders(h http.Header, d *Decision) {
	if d.Policy != nil && !d.FailedOpen {
		new(headers.Values).Set(h, d.Limit, d.Remaining, d.Reset, d.RetryAfterSeconds())
	}
}

// SetIETFHeaders writes the IETF RateLimit-Policy and RateLimit fields of
// version v for the binding window. A failed-open or zero Decision writes
// nothing.
func SetIETFHeaders(h http.Header, d *Decision, v IETFVersion) {
	if v != IETFDraft10 || d.Policy == nil || d.FailedOpen {
		return
	}
	w := &d.Policy.windows[d.Tightest]
	var pbuf, rbuf [128]byte
	policy := strconv.AppendQuote(pbuf[:0], w.Name)
	policy = append(policy, ";q="...)
	policy = strconv.AppendInt(policy, w.Limit, 10)
	policy = append(policy, ";w="...)
	period := w.Period
	if w.Monthly {
		period = d.Reset.Sub(d.Reset.AddDate(0, -1, 0)) // the current month's length
	}
	policy = strconv.AppendInt(policy, ceilSeconds(int64(period)), 10)
	limit := strconv.AppendQuote(rbuf[:0], w.Name)
	limit = append(limit, ";r="...)
	limit = strconv.AppendInt(limit, d.Remaining, 10)
	limit = append(limit, ";t="...)
	limit = strconv.AppendInt(limit, max(ceilSeconds(int64(d.ResetAfter)), 0), 10)
	h["Ratelimit-Policy"] = []string{string(policy)}
	h["Ratelimit"] = []string{string(limit)}
}
