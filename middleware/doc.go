// Package middleware is keygate's net/http glue.
//
// [Middleware.Authenticate] wraps a router: it reads the key from
// Authorization: Bearer or X-API-Key (never, by default, from the URL),
// verifies it, applies the key's IP, referrer and endpoint restrictions
// and its plan's rate limit (with X-RateLimit-* headers on every response
// it lets through), puts the [apikey.Principal] on the request context
// ([PrincipalFrom]) and records usage after the handler returns. Guards
// go on routes inside the router, where the route is known:
// [Middleware.Require], [Middleware.RequireMethod] (GET needs read, POST
// write, DELETE delete) and [Middleware.RequireProject].
//
// Refusals are written by an [ErrorWriter]: [DefaultErrors]
// ({"error":"..."}), [DetailErrors], [CodeErrors] or [ProblemErrors]
// (RFC 9457). A store or limiter failure is a 503 whose body says nothing
// of the cause; the hooks in [Config] receive the reasons, never the key.
// A request that matches no route of the wrapped [http.ServeMux] (or
// [Config].Routes) gets a 404 or 405 through the same writer, and takes
// no rate-limit token. A refused request's body is never read: its
// connection is closed after the answer.
//
// The key owner's self-service REST API, for the host's logged-in users,
// is in middleware/manage.
package middleware
