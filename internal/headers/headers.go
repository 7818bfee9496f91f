// Package headers writes the X-RateLimit-* response headers without
// allocating: the middleware embeds a [Values] in the one object it
// allocates per request anyway, and ratelimit.SetHeaders allocates one.
package headers

import (
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// Header names, in the canonical form net/http stores and sends.
const (
	Limit      = "X-Ratelimit-Limit"
	Remaining  = "X-Ratelimit-Remaining"
	Reset      = "X-Ratelimit-Reset"
	RetryAfter = "Retry-After"
)

// Values is the storage of one response's header values: the value
// slices and their digits. The header values point into it, so it must
// not be reused for another response.
type Values struct {
	vals [4]string
	// Limit (up to 7 digits), remaining (7), reset (10) and Retry-After
	// (5) fit; longer values spill into an allocation of their own.
	buf [32]byte
}

// Set writes limit, remaining and reset (in Unix seconds, rounded up)
// and, when retry (seconds) is positive, Retry-After. It assigns canonical
// keys directly, where Header.Set would canonicalise them and allocate
// each value.
func (v *Values) Set(h http.Header, limit, remaining int64, reset time.Time, retry int64) {
	b := v.buf[:0]
	b, v.vals[0] = appendText(b, limit)
	b, v.vals[1] = appendText(b, remaining)
	b, v.vals[2] = appendText(b, (reset.UnixNano()+int64(time.Second)-1)/int64(time.Second))
	h[Limit] = v.vals[0:1:1]
	h[Remaining] = v.vals[1:2:2]
	h[Reset] = v.vals[2:3:3]
	if retry > 0 {
		_, v.vals[3] = appendText(b, retry)
		h[RetryAfter] = v.vals[3:4:4]
	}
}

// appendText appends n in decimal to b and returns the digits as a string
// that shares b's memory, saving an allocation per value. It is safe
// because those bytes are never written again: later appends go after
// them, or to a new array once b is full (what strings.Builder relies on
// too).
func appendText(b []byte, n int64) ([]byte, string) {
	i := len(b)
	b = strconv.AppendInt(b, n, 10)
	return b, unsafe.String(&b[i], len(b)-i)
}
