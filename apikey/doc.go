// Package apikey is keygate's core: the text form of API keys, their
// records, and the lifecycle that issues, verifies, rotates and revokes
// them. It has no network and no HTTP; stores plug in through [Store] and
// the middleware package adds net/http.
//
// # Keys
//
// A key reads <prefix>_[<env>_]<body><checksum>, for example
//
//	kg_live_8fQ2xZ0aLmN3pQ7rS1tU5vW9yA2bC4dE6fG7hJ
//
// The body is base62 from crypto/rand (32 characters, 190 bits, by
// default; a store that routes, [Router], has its route lead the body);
// the checksum is the CRC-32C of everything before it, so
// [Service.Verify] rejects typos and garbage ([ErrMalformed]) before any
// store is asked. [Config].Format reproduces other formats exactly, such
// as idc_ + 32 characters without checksum.
//
// A key's text is shown once, in the [Issued] result of [Service.Create]
// or [Service.Rotate], as a [Secret] that prints, logs and marshals as
// "[REDACTED]" until [Secret.Reveal] is called. Stores keep only its
// SHA-256 [Hash] (or HMAC-SHA256 with a server-side [Pepper]) and a display
// prefix such as "kg_live_8fQ2xZ" to identify it in lists.
//
// # Lifecycle
//
// [Service] applies every policy: input validation, at most 10 active keys
// per owner (checked atomically by the store), ownership (another owner's
// key is [ErrNotFound]), expiry, not-before, revocation and rotation with
// an optional grace period. [Service.Verify] turns a presented key into a
// [Principal] (owner, permissions, project scope, restrictions) or an error:
// [ErrMalformed] for garbage, [ErrInvalidKey] for unknown, deleted and
// revoked keys alike, [ErrExpired], [ErrNotYetValid]; anything else is a
// store failure that should be answered with 503, not 401. Every change
// is an event of the audit trail (package apikey/event), which a store
// that keeps one writes with the change.
//
// An [Account] owns keys: the rate-limit plan they share, custom limits
// and credits (package ratelimit's), changed with [Service.UpdateAccount].
//
// Time comes from [Config].Clock, so expiry and grace periods can be tested
// at exact instants.
package apikey
