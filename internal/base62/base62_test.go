package base62

import (
	"strings"
	"testing"
)

// Valid agrees with the alphabet for every byte value at every position,
// for inputs shorter than, equal to and longer than one word.
func TestValidMatchesDigits(t *testing.T) {
	for _, n := range []int{0, 1, 5, 8, 9, 16, 38, 54} {
		buf := []byte(strings.Repeat(Digits, 2)[:n])
		if !Valid(string(buf)) {
			t.Fatalf("length %d: digits refused", n)
		}
		for i := range buf {
			orig := buf[i]
			for c := range 256 {
				buf[i] = byte(c)
				if got, want := Valid(string(buf)), strings.IndexByte(Digits, byte(c)) >= 0; got != want {
					t.Fatalf("length %d, byte %#x at %d: got %v, want %v", n, c, i, got, want)
				}
			}
			buf[i] = orig
		}
	}
}
