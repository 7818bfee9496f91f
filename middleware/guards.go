package middleware

import (
	"net/http"
	"strings"

	"github.com/keygate/keygate/apikey"
)

// guard refuses requests that check does not accept. A request without a
// principal (the guard used without Authenticate) is refused with 401,
// never let through.
func (m *Middleware) guard(check func(*http.Request, apikey.Principal) (code, msg string)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				m.fail(w, r, http.StatusUnauthorized, CodeInvalidKey, msgInvalid)
				return
			}
			if code, msg := check(r, p); code != "" {
				m.fail(w, r, http.StatusForbidden, code, msg)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// PermissionMessage is the refusal for a missing permission, such as
// "Read permission required".
func PermissionMessage(perm apikey.Permission) string {
	s := string(perm)
	if s == "" {
		return "Permission required"
	}
	return strings.ToUpper(s[:1]) + s[1:] + " permission required"
}

// Require refuses keys without perm with 403.
func (m *Middleware) Require(perm apikey.Permission) func(http.Handler) http.Handler {
	msg := PermissionMessage(perm)
	return m.guard(func(_ *http.Request, p apikey.Principal) (string, string) {
		if !p.Has(perm) {
			return CodeMissingPermission, msg
		}
		return "", ""
	})
}

// MethodPermission is the default mapping of methods to permissions:
// GET, HEAD and OPTIONS need read; POST, PUT and PATCH need write; DELETE
// needs delete. Other methods need write.
func MethodPermission(method string) apikey.Permission {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return apikey.Read
	case http.MethodDelete:
		return apikey.Delete
	}
	return apikey.Write
}

var methodMessages = map[apikey.Permission]string{
	apikey.Read:   PermissionMessage(apikey.Read),
	apikey.Write:  PermissionMessage(apikey.Write),
	apikey.Delete: PermissionMessage(apikey.Delete),
}

// RequireMethod refuses keys without the permission [MethodPermission]
// maps the request's method to.
func (m *Middleware) RequireMethod() func(http.Handler) http.Handler {
	return m.guard(func(r *http.Request, p apikey.Principal) (string, string) {
		perm := MethodPermission(r.Method)
		if !p.Has(perm) {
			return CodeMissingPermission, methodMessages[perm]
		}
		return "", ""
	})
}

// RequireProject refuses a project-scoped key whose project differs from
// the request's, as project returns it (for example r.PathValue("project_id")).
// Account-wide keys pass.
func (m *Middleware) RequireProject(project func(*http.Request) string) func(http.Handler) http.Handler {
	return m.guard(func(r *http.Request, p apikey.Principal) (string, string) {
		if !p.CanAccessProject(project(r)) {
			return CodeWrongProject, msgWrongProject
		}
		return "", ""
	})
}

// Chain wraps h in guards, the first outermost.
func Chain(h http.Handler, guards ...func(http.Handler) http.Handler) http.Handler {
	for i := len(guards) - 1; i >= 0; i-- {
		h = guards[i](h)
	}
	return h
}
