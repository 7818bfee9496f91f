package apikey

import "testing"

// isBase62 agrees with the lookup table for every byte value at every
// position, for inputs shorter than, equal to and longer than one word.
func TestIsBase62MatchesTable(t *testing.T) {
	for _, n := range []int{1, 5, 8, 9, 16, 38, 54} {
		buf := []byte(base62[:n])
		for i := range buf {
			orig := buf[i]
			for c := range 256 {
				buf[i] = byte(c)
				if got, want := isBase62(string(buf)), base62Value[c] != 0xff; got != want {
					t.Fatalf("length %d, byte %#x at %d: got %v, want %v", n, c, i, got, want)
				}
			}
			buf[i] = orig
		}
	}
}
