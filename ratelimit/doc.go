// Package ratelimit limits requests per key with multi-window policies and
// reports where a client stands in standard headers.
//
// A [Policy] is one or more [Window]s: a request passes only if every
// window has room, and then takes from every window; a denied request takes
// from none. Minute and hour windows are token buckets (kept as GCRA: one
// integer instant per window, exact to the nanosecond; a rate, so a bucket
// of burst N can admit up to 2N in one period). Day windows are fixed
// counters aligned to UTC days: never more than their limit within a day,
// resetting at midnight UTC. The usual plans are presets: [Free] (10/min,
// 1,000/day), [Starter] (60/min, 10,000/day), [Business] (300/min,
// 100,000/day); [Plans] resolves a key's plan and per-key overrides.
//
// A [Limiter] returns a [Decision]: allowed, and the limit, remaining,
// reset and retry-after of the binding window. [Memory]
// keeps state in process, evicting idle keys; ratelimit/redislimit shares
// limits across instances through one Lua script per request. Both pass
// the same suite, ratelimit/ratelimittest.
//
// [SetHeaders] writes X-RateLimit-Limit, X-RateLimit-Remaining,
// X-RateLimit-Reset and, on a denial, Retry-After; [SetIETFHeaders] adds
// the IETF draft's RateLimit-Policy and RateLimit fields.
package ratelimit
