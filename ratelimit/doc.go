// Package ratelimit limits the requests of accounts and their keys with
// multi-window policies and credit balances, and reports where a caller
// stands in standard headers.
//
// A [Policy] is one or more [Window]s: a request passes only if every
// window has room, and then takes from every window; a denied request
// takes from none. Minute and hour windows are token buckets (kept as
// GCRA: one integer instant per window, exact to the nanosecond; a rate,
// so a bucket of burst N can admit up to 2N in one period). Day windows
// are fixed counters aligned to UTC days, and month windows count per
// calendar month, UTC. [Plans] name policies; [DefaultPlans] are free,
// starter and business.
//
// A [Request] is decided against its account's policy, shared by all
// the account's keys, and optionally a policy of the key's own, as a cap
// within the account's; and against the account's [Credits], a balance
// each request spends by its cost, refilled daily or monthly. It passes
// only if all of them allow it, and a refusal spends nothing. State
// follows the account and the key's lineage, so rotations and plan
// changes carry what was spent.
//
// A [Limiter] returns a [Decision]: allowed, and the limit, remaining,
// reset and retry-after of the binding window or balance. [Memory] keeps
// state in process, evicting idle state; ratelimit/redislimit shares it
// across instances through one Lua script per request, or leases from
// Redis in local-first mode. Both pass the same suite,
// ratelimit/ratelimittest.
//
// [SetHeaders] writes X-RateLimit-Limit, X-RateLimit-Remaining,
// X-RateLimit-Reset and, on a denial, Retry-After; [SetIETFHeaders] adds
// the IETF draft's RateLimit-Policy and RateLimit fields.
package ratelimit
