package ratelimit_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/ratelimit"
)

func TestCreditsJSON(t *testing.T) {
	at := time.Date(2030, 3, 31, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		c    ratelimit.Credits
		json string
	}{
		{"no refill", ratelimit.Credits{Balance: 5}, `{"balance":5}`},
		{"daily, replacing", ratelimit.Credits{Balance: 5, Granted: at, Refill: 9, RefillAt: at},
			`{"balance":5,"granted_at":"2030-03-31T12:00:00Z","refill_amount":9,"refill_period":"day","refill_at":"2030-03-31T12:00:00Z","refill_mode":"replace"}`},
		{"monthly, adding", ratelimit.Credits{Refill: 9, Monthly: true, RefillAt: at, Add: true},
			`{"balance":0,"refill_amount":9,"refill_period":"month","refill_at":"2030-03-31T12:00:00Z","refill_mode":"add"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := json.Marshal(tc.c)
			require.NoError(t, err)
			assert.JSONEq(t, tc.json, string(out))
			var back ratelimit.Credits
			require.NoError(t, json.Unmarshal(out, &back))
			assert.Equal(t, tc.c, back)
		})
	}
}

// Bad JSON credits are refused, and leave what they were decoded into
// as it was.
func TestCreditsJSONBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"unknown field":             `{"balance":5,"refil_amount":3}`,
		"unknown period":            `{"balance":5,"refill_amount":3,"refill_period":"week"}`,
		"unknown mode":              `{"balance":5,"refill_amount":3,"refill_period":"day","refill_mode":"double"}`,
		"period without amount":     `{"balance":5,"refill_period":"day"}`,
		"amount without period":     `{"balance":5,"refill_amount":3}`,
		"mode without a refill":     `{"balance":5,"refill_mode":"add"}`,
		"not an object":             `"5"`,
		"a balance of another type": `{"balance":"5"}`,
	} {
		c := ratelimit.Credits{Balance: 42}
		err := json.Unmarshal([]byte(in), &c)
		require.ErrorIs(t, err, ratelimit.ErrInvalidCredits, name)
		assert.Equal(t, ratelimit.Credits{Balance: 42}, c, name)
	}
}
