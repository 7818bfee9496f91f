// Package base62 holds the alphabet of key bodies, which the key format
// (apikey) and the Redis store's routes (store/redisstore) share.
package base62

import (
	"encoding/binary"
	"unsafe"
)

// Digits are the base62 digits in value order.
const Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Valid reports whether every byte of s is a base62 digit. It checks
// eight bytes per step as one uint64 (SWAR), finishing with an
// overlapping last word instead of a byte loop: it runs on every key
// verified.
func Valid(s string) bool {
	if len(s) < 8 {
		var x [8]byte // padded with a digit, so that only s's bytes count
		for i := range x {
			x[i] = '0'
		}
		copy(x[:], s)
		return nonBase62(binary.LittleEndian.Uint64(x[:])) == 0
	}
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	var bad uint64
	for ; len(b) > 8; b = b[8:] {
		bad |= nonBase62(binary.LittleEndian.Uint64(b))
	}
	return bad|nonBase62(binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), len(s))[len(s)-8:])) == 0
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
