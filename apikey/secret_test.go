package apikey_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
)

// holder has the Secret in an unexported field, where fmt cannot call its
// methods and prints whatever reflection finds.
type holder struct {
	name   string
	secret apikey.Secret
	issued apikey.Issued
}

// No printed, encoded or logged form of a key or a create result contains
// the key text beyond its display prefix.
func TestSecretNeverLeaks(t *testing.T) {
	t.Parallel()
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	require.NoError(t, err)
	issued, err := svc.Create(context.Background(), apikey.CreateParams{Owner: "acct", Name: "leak test"})
	require.NoError(t, err)
	secret := issued.Secret
	key := secret.Reveal()
	hidden := key[len(issued.Key.DisplayPrefix):]
	require.Len(t, hidden, 32)

	values := map[string]any{
		"Secret":         secret,
		"*Secret":        &secret,
		"Issued":         issued,
		"*Issued":        &issued,
		"unexported":     holder{name: "x", secret: secret, issued: issued},
		"slice":          []apikey.Secret{secret},
		"map":            map[string]apikey.Secret{"k": secret},
		"map key":        map[apikey.Secret]int{secret: 1},
		"nested pointer": &holder{secret: secret},
	}
	var outputs []string
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			outputs = append(outputs, name+" "+verb+": "+fmt.Sprintf(verb, v))
		}
		outputs = append(outputs, name+" Sprint: "+fmt.Sprint(v), name+" Sprintln: "+fmt.Sprintln(v))
		if b, err := json.Marshal(v); err == nil {
			outputs = append(outputs, name+" json: "+string(b))
		}
		for handlerName, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
			"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			var buf bytes.Buffer
			logger := slog.New(newHandler(&buf))
			logger.Info("issued", "value", v, slog.Any("any", v), slog.Group("g", "v", v))
			logger.Info(fmt.Sprint(v))
			outputs = append(outputs, name+" slog "+handlerName+": "+buf.String())
		}
	}
	for _, out := range outputs {
		assert.NotContains(t, out, hidden)
	}
	assert.Equal(t, "[REDACTED]", fmt.Sprint(secret))
	assert.Equal(t, `"[REDACTED]"`, mustJSON(t, secret))
	assert.Contains(t, fmt.Sprintf("%+v", issued), issued.Key.DisplayPrefix, "the display prefix still identifies the key")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestZeroSecret(t *testing.T) {
	t.Parallel()
	var s apikey.Secret
	assert.Empty(t, s.Reveal())
	assert.Equal(t, "[REDACTED]", fmt.Sprint(s))
}
