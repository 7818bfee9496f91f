package apikey

import "encoding/binary"

// isBase62 reports whether every byte of s is a base62 digit. It checks
// eight bytes per step as one uint64 (SWAR), finishing with an overlapping
// last word instead of a byte loop.
func isBase62(s string) bool {
	if len(s) < 8 {
		for i := range len(s) {
			if base62Value[s[i]] == 0xff {
				return false
			}
		}
		return true
	}
	b := stringBytes(s)
	var bad uint64
	for ; len(b) > 8; b = b[8:] {
		bad |= nonBase62(binary.LittleEndian.Uint64(b))
	}
	return bad|nonBase62(binary.LittleEndian.Uint64(stringBytes(s)[len(s)-8:])) == 0
}

// nonBase62 returns, for each of the eight bytes in x, 0x80 if it is not a
// base62 digit and 0 if it is. For a 7-bit byte v, v+(0x80-lo) has its top
// bit set when v >= lo, and v+(0x7f-hi) when v > hi; neither sum carries
// into the next byte. Setting bit 0x20 folds A-Z onto a-z and maps no other
// byte into that range.
func nonBase62(x uint64) uint64 {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
		fold = 0x2020202020202020
	)
	v := x &^ high
	l := v | fold
	digit := (v + (0x80-'0')*ones) &^ (v + (0x7f-'9')*ones)
	letter := (l + (0x80-'a')*ones) &^ (l + (0x7f-'z')*ones)
	return x&high | ((digit|letter)&high ^ high)
}
