package sqllimit

import (
	"errors"
	"strconv"
	"strings"

	"github.com/keygate/keygate/internal/binding"
)

// A row's state is text, so that an operator can read it: integers
// separated by spaces, "" for a new state.
//
//   - windows (rows "a:" and "k:"): per window its period and interval
//     (nanoseconds: a bucket's time per token, 0 for a fixed window; a
//     period of 0 is a calendar month), then its state T and V (a
//     bucket's theoretical arrival time, or a fixed window's start and
//     count): 4 integers per window;
//   - credits (rows "c:"): the grant (its instant), the balance and the
//     number of refills applied.
//
// The period and interval a state was kept under let a changed policy
// carry it over, as the memory limiter does.

// windowsState is a row of windows: the windows it was kept under and
// their cells.
type windowsState struct {
	n     int
	was   [binding.MaxWindows]binding.Window
	cells [binding.MaxWindows]binding.Cell
}

var errCorrupt = errors.New("a state that does not decode")

// parseInts reads the integers of s into out, which must be exactly
// filled.
func parseInts(s string, out []int64) error {
	for i := range out {
		field, rest, _ := strings.Cut(s, " ")
		v, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return errCorrupt
		}
		out[i], s = v, rest
	}
	if s != "" {
		return errCorrupt
	}
	return nil
}

// parseWindows decodes a row of windows; "" is a new state, of none.
func parseWindows(s string) (windowsState, error) {
	var st windowsState
	if s == "" {
		return st, nil
	}
	n := strings.Count(s, " ") + 1
	if n%4 != 0 || n/4 > binding.MaxWindows {
		return st, errCorrupt
	}
	var v [4 * binding.MaxWindows]int64
	if err := parseInts(s, v[:n]); err != nil {
		return st, err
	}
	st.n = n / 4
	for i := range st.n {
		period, interval := v[4*i], v[4*i+1]
		if period < 0 || interval < 0 || interval > 0 && period == 0 {
			return windowsState{}, errCorrupt
		}
		st.was[i] = binding.Window{Period: period, Interval: interval, Monthly: period == 0, Unit: 1}
		st.cells[i] = binding.Cell{T: v[4*i+2], V: v[4*i+3]}
	}
	return st, nil
}

// formatWindows encodes cells, the state of windows ws.
func formatWindows(ws []binding.Window, cells []binding.Cell) string {
	b := make([]byte, 0, 48*len(ws))
	for i := range ws {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, ws[i].Period, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, ws[i].Interval, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, cells[i].T, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, cells[i].V, 10)
	}
	return string(b)
}

// creditState is a row of credits: the balance after n refills of the
// grant of that instant.
type creditState struct {
	grant, balance, n int64
	known             bool // false for a new state
}

func parseCredits(s string) (creditState, error) {
	if s == "" {
		return creditState{}, nil
	}
	var v [3]int64
	if strings.Count(s, " ") != 2 {
		return creditState{}, errCorrupt
	}
	if err := parseInts(s, v[:]); err != nil {
		return creditState{}, err
	}
	return creditState{grant: v[0], balance: v[1], n: v[2], known: true}, nil
}

func formatCredits(c creditState) string {
	return strconv.FormatInt(c.grant, 10) + " " + strconv.FormatInt(c.balance, 10) + " " + strconv.FormatInt(c.n, 10)
}
