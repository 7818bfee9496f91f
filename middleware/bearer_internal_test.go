package middleware

import (
	"strings"
	"testing"
)

// slowBearer is bearer without its fast path: trim, split at the first
// space, fold the scheme's case, trim the key's leading spaces.
func slowBearer(v string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(rest, " "), true
}

// FuzzBearer checks that the fast path answers as the general one does.
func FuzzBearer(f *testing.F) {
	for _, v := range []string{
		"Bearer kg_live_x", "bearer kg_live_x", "Bearer  kg", "Bearer kg ", "Bearer kg\t",
		"Bearer kg\u00a0", "Bearer \u00a0kg", "Bearer", "Bearer ", "Bearer a b", "Basic abc", " Bearer kg",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, ok := Bearer(v)
		wantKey, wantOK := slowBearer(v)
		if key != wantKey || ok != wantOK {
			t.Fatalf("Bearer(%q) = %q, %v; want %q, %v", v, key, ok, wantKey, wantOK)
		}
	})
}
