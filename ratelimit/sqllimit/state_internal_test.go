package sqllimit

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/internal/binding"
)

func TestStateRoundTrips(t *testing.T) {
	ws := []binding.Window{
		{Period: 60e9, Interval: 6e9},
		{Period: 86400e9},
		{Monthly: true},
	}
	cells := []binding.Cell{{T: 1893578406000000000}, {T: 1893542400000000000, V: 8}, {T: 1893456000000000000, V: 3}}
	st, err := parseWindows(formatWindows(ws, cells))
	require.NoError(t, err)
	require.Equal(t, 3, st.n)
	for i := range ws {
		assert.Equal(t, ws[i].Period, st.was[i].Period)
		assert.Equal(t, ws[i].Interval, st.was[i].Interval)
		assert.Equal(t, ws[i].Monthly, st.was[i].Monthly)
		assert.Equal(t, cells[i], st.cells[i])
	}
	c := creditState{grant: 1893456000000000000, balance: 42, n: 3, known: true}
	got, err := parseCredits(formatCredits(c))
	require.NoError(t, err)
	assert.Equal(t, c, got)
}

func TestBadStatesAreErrors(t *testing.T) {
	for _, s := range []string{" ", "1 2 3", "1 2 3 4 5", "60 -1 0 0", "0 5 0 0", "a b c d", "1 2 3 4 1 2 3 4 1 2 3 4 1 2 3 4 1 2 3 4", "1  2 3 4", "99999999999999999999 0 0 0"} {
		_, err := parseWindows(s)
		assert.ErrorIs(t, err, errCorrupt, "%q", s)
	}
	for _, s := range []string{" ", "1 2", "1 2 3 4", "1 x 3", "1 2 3 "} {
		_, err := parseCredits(s)
		assert.ErrorIs(t, err, errCorrupt, "%q", s)
	}
}

// FuzzState: any text either decodes to a state that encodes back to
// itself, or is an error; never a panic.
func FuzzState(f *testing.F) {
	f.Add("60000000000 6000000000 1893578406000000000 0 86400000000 0 1893542400000000000 8")
	f.Add("0 0 1893456000000000000 3")
	f.Add("1893456000000000000 42 3")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := parseWindows(s); err == nil && st.n > 0 {
			ws := make([]binding.Window, st.n)
			copy(ws, st.was[:st.n])
			again, err := parseWindows(formatWindows(ws, st.cells[:st.n]))
			require.NoError(t, err)
			require.Equal(t, st, again)
		}
		if c, err := parseCredits(s); err == nil && c.known {
			again, err := parseCredits(formatCredits(c))
			require.NoError(t, err)
			require.Equal(t, c, again)
		}
	})
}

func TestRetryable(t *testing.T) {
	for msg, want := range map[string]bool{
		"Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction": true,
		"ERROR: deadlock detected (SQLSTATE 40P01)":                                              true,
		"ERROR: could not serialize access (SQLSTATE 40001)":                                     true,
		"dial tcp 127.0.0.1:5432: connect: connection refused":                                   false,
		"context deadline exceeded":                                                              false,
	} {
		assert.Equal(t, want, retryable(errors.New(msg)), msg)
	}
	assert.False(t, retryable(nil))
}
