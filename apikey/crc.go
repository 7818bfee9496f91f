package apikey

import (
	"encoding/binary"
	"hash/crc32"
)

// crcTables is CRC-32 (IEEE) in slicing-by-8 form. hash/crc32 gives the
// same results, but this version works on strings, starts from a
// precomputed state for the constant "<prefix>_<env>_" part of a key, and
// checks the base62 charset of each 8-byte word it loads, so Parse reads
// every byte of a key once.
var crcTables = func() (t [8][256]uint32) {
	t[0] = *crc32.MakeTable(crc32.IEEE)
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

// crcUpdate advances the raw CRC register (not inverted) over s.
func crcUpdate(crc uint32, s string) uint32 {
	for len(s) >= 8 {
		crc = crcWord(crc, binary.LittleEndian.Uint64(stringBytes(s)))
		s = s[8:]
	}
	for i := range len(s) {
		crc = crcTables[0][byte(crc)^s[i]] ^ crc>>8
	}
	return crc
}

func crcWord(crc uint32, w uint64) uint32 {
	crc ^= uint32(w)
	return crcTables[0][byte(w>>56)] ^ crcTables[1][byte(w>>48)] ^ crcTables[2][byte(w>>40)] ^ crcTables[3][byte(w>>32)] ^
		crcTables[4][crc>>24] ^ crcTables[5][byte(crc>>16)] ^ crcTables[6][byte(crc>>8)] ^ crcTables[7][byte(crc)]
}

// crc32IEEE returns crc32.ChecksumIEEE([]byte(s)) without converting s.
func crc32IEEE(s string) uint32 { return ^crcUpdate(^uint32(0), s) }

// crcBase62 advances the raw CRC register over s and reports whether every
// byte of s is a base62 digit.
func crcBase62(crc uint32, s string) (uint32, bool) {
	var bad uint64
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(stringBytes(s))
		bad |= nonBase62(w)
		crc = crcWord(crc, w)
		s = s[8:]
	}
	var badByte byte
	for i := range len(s) {
		badByte |= base62Value[s[i]]
		crc = crcTables[0][byte(crc)^s[i]] ^ crc>>8
	}
	return crc, bad == 0 && badByte&0x80 == 0
}

// nonBase62 returns, for each of the eight bytes in x, 0x80 if it is not a
// base62 digit and 0 if it is. For a 7-bit byte v, v+(0x80-lo) has its top
// bit set when v >= lo, and v+(0x7f-hi) when v > hi; neither sum carries
// into the next byte.
func nonBase62(x uint64) uint64 {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	v := x &^ high
	digit := (v + (0x80-'0')*ones) &^ (v + (0x7f-'9')*ones)
	upper := (v + (0x80-'A')*ones) &^ (v + (0x7f-'Z')*ones)
	lower := (v + (0x80-'a')*ones) &^ (v + (0x7f-'z')*ones)
	return x&high | ((digit | upper | lower) & high ^ high)
}
