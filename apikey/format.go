package apikey

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unsafe"

	"github.com/keygate/keygate/internal/base62"
)

// Limits of a [FormatConfig].
const (
	// minBodyLength is the shortest random body: 22 base62 characters
	// carry 130.9 bits of entropy, the first length at or above 128 bits.
	minBodyLength = 22
	// maxBodyLength is the longest random body.
	maxBodyLength = 64
	// defaultBodyLength is the body length when FormatConfig.BodyLength is 0.
	defaultBodyLength = 32
	// defaultDisplayLength is how many leading characters of a key identify
	// it in lists and logs, unless that would reveal too much of the body.
	defaultDisplayLength = 14
	// checksumLength is the width of the base62 CRC32 checksum.
	checksumLength = 6
	// defaultPrefix is the default format's prefix. It is deliberately
	// not "sk": secret scanners (GitHub push protection, gitleaks) attribute
	// sk_live_ and sk_test_ keys to Stripe. Pick a prefix of your own so that
	// scanners can be taught to recognise your keys.
	defaultPrefix = "kg"

	maxPrefixLength = 16
	maxEnvLength    = 16
)

// castagnoli is the CRC-32C table. CRC-32C has the error-detection
// guarantees of the IEEE polynomial (every burst of up to 32 bits, so every
// single-character typo and adjacent swap) and runs on the CRC32
// instruction of amd64 and arm64, at about half the cost.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// base62Value maps a byte to its base62 digit value, or 0xff.
var base62Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(base62.Digits) {
		t[base62.Digits[i]] = byte(i)
	}
	return t
}()

// FormatConfig describes the text form of keys:
//
//	<prefix>_[<env>_]<body><checksum>
//
// The zero value of each field selects its default.
type FormatConfig struct {
	// Prefix names the issuer, 1 to 16 lower-case letters or digits,
	// starting with a letter. Default "kg". Pick a prefix of your own:
	// secret scanners attribute "sk_live_" and "sk_test_" to Stripe, and
	// a distinctive prefix lets them be taught yours.
	Prefix string
	// Environments lists the allowed environment segments (for example
	// "live" and "test"), each 1 to 16 lower-case letters or digits. When
	// empty, keys carry no environment segment; otherwise every key carries
	// one of them and the first is the default.
	Environments []string
	// BodyLength is the number of random base62 characters, from
	// 22 (the first length carrying 128 bits) to 64. Default 32.
	BodyLength int
	// NoChecksum drops the trailing CRC32 checksum. With the checksum on
	// (the default), a typo is caught without a store lookup; turn it off
	// only to reproduce an existing format exactly.
	NoChecksum bool
	// DisplayLength is how many leading characters form the display prefix
	// shown in lists. Default 14, shortened when needed so that at least
	// 22 body characters (128 bits) stay hidden; an
	// explicit value that reveals more is an error.
	DisplayLength int
}

// keyFormat generates and parses keys of one [FormatConfig]. It is
// immutable and safe for concurrent use.
type keyFormat struct {
	prefix   string // including the trailing '_'
	envs     []string
	bodyLen  int
	checksum bool
	display  int
	minLen   int
	maxLen   int
	// heads are the constant starts of keys: "<prefix>_" alone, or
	// "<prefix>_<env>_" for each env in order.
	heads []keyHead
	// prefixHead is "<prefix>_", to tell a wrong prefix from a wrong env.
	prefixHead keyHead
}

// keyHead is one constant start of a key, with what Parse needs to match it
// in one comparison and to continue its checksum.
type keyHead struct {
	text string
	env  string
	// word and mask hold text as a little-endian uint64 when it is at most
	// 8 bytes long (mask 0 otherwise): a single load and compare match it.
	word, mask uint64
	crc        uint32 // CRC-32C of text, to continue over the body
}

func newKeyHead(text, env string) keyHead {
	h := keyHead{text: text, env: env, crc: crc32.Checksum([]byte(text), castagnoli)}
	if len(text) <= 8 {
		for i := range len(text) {
			h.word |= uint64(text[i]) << (8 * i)
			h.mask |= 0xff << (8 * i)
		}
	}
	return h
}

// match reports whether s starts with the head; len(s) >= 8.
func (h *keyHead) match(s string) bool {
	if h.mask != 0 {
		return binary.LittleEndian.Uint64(stringBytes(s))&h.mask == h.word
	}
	return len(s) >= len(h.text) && s[:len(h.text)] == h.text
}

// newFormat validates cfg and returns its format.
func newFormat(cfg FormatConfig) (*keyFormat, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if !isLowerAlnum(cfg.Prefix, maxPrefixLength) || cfg.Prefix[0] < 'a' {
		return nil, fmt.Errorf("%w: prefix %q must be 1 to %d lower-case letters or digits starting with a letter",
			ErrInvalidConfig, cfg.Prefix, maxPrefixLength)
	}
	if cfg.BodyLength == 0 {
		cfg.BodyLength = defaultBodyLength
	}
	if cfg.BodyLength < minBodyLength || cfg.BodyLength > maxBodyLength {
		return nil, fmt.Errorf("%w: body length %d outside %d..%d",
			ErrInvalidConfig, cfg.BodyLength, minBodyLength, maxBodyLength)
	}
	f := &keyFormat{
		prefix:   cfg.Prefix + "_",
		envs:     make([]string, 0, len(cfg.Environments)),
		bodyLen:  cfg.BodyLength,
		checksum: !cfg.NoChecksum,
	}
	shortestEnv, longestEnv := 0, 0
	for i, env := range cfg.Environments {
		if !isLowerAlnum(env, maxEnvLength) {
			return nil, fmt.Errorf("%w: environment %q must be 1 to %d lower-case letters or digits",
				ErrInvalidConfig, env, maxEnvLength)
		}
		if f.hasEnv(env) {
			return nil, fmt.Errorf("%w: environment %q listed twice", ErrInvalidConfig, env)
		}
		f.envs = append(f.envs, env)
		n := len(env) + 1
		if i == 0 || n < shortestEnv {
			shortestEnv = n
		}
		longestEnv = max(longestEnv, n)
	}
	f.prefixHead = newKeyHead(f.prefix, "")
	if len(f.envs) == 0 {
		f.heads = []keyHead{f.prefixHead}
	}
	for _, env := range f.envs {
		f.heads = append(f.heads, newKeyHead(f.prefix+env+"_", env))
	}
	tail := f.bodyLen
	if f.checksum {
		tail += checksumLength
	}
	f.minLen = len(f.prefix) + shortestEnv + tail
	f.maxLen = len(f.prefix) + longestEnv + tail

	// The display prefix must leave minBodyLength body characters hidden in
	// every environment, so that a listed prefix never weakens a key below
	// 128 bits.
	visible := len(f.prefix) + shortestEnv + f.bodyLen - minBodyLength
	switch {
	case cfg.DisplayLength == 0:
		f.display = min(defaultDisplayLength, visible)
	case cfg.DisplayLength < 0 || cfg.DisplayLength > visible:
		return nil, fmt.Errorf("%w: display length %d must be 1..%d to keep %d body characters hidden",
			ErrInvalidConfig, cfg.DisplayLength, visible, minBodyLength)
	default:
		f.display = cfg.DisplayLength
	}
	return f, nil
}

func isLowerAlnum(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (f *keyFormat) hasEnv(env string) bool {
	for _, e := range f.envs {
		if e == env {
			return true
		}
	}
	return false
}

// parsedKey holds the parts of a key that parse accepted. It does not
// hold the key itself, so it is safe to log.
type parsedKey struct {
	// Environment is the key's environment segment, or "" when the format
	// has none.
	Environment string
	// DisplayPrefix is the key's first characters, for identification.
	DisplayPrefix string
	// body is the offset of the body in the key.
	body int
}

// Parse checks that s has the shape of a key this format generates: prefix,
// environment, length, charset and checksum, in that order of cost. It
// touches no store; every failure matches [ErrMalformed]. An oversized input is rejected by its length before any
// byte of it is read.
func (f *keyFormat) parse(s string) (parsedKey, error) {
	switch {
	case s == "":
		return parsedKey{}, errEmpty
	case len(s) < f.minLen || len(s) > f.maxLen:
		return parsedKey{}, errLength
	}
	// minLen exceeds 8 (the body alone is 22 or more), as match requires.
	// The bare prefix first: garbage fails on one compare.
	if !f.prefixHead.match(s) {
		return parsedKey{}, errPrefix
	}
	var head *keyHead
	for i := range f.heads {
		if f.heads[i].match(s) {
			head = &f.heads[i]
			break
		}
	}
	if head == nil {
		return parsedKey{}, errEnvironment
	}
	env := head.env
	rest := s[len(head.text):]
	if len(rest) != f.tailLen() {
		return parsedKey{}, errLength
	}
	if !base62.Valid(rest) {
		return parsedKey{}, errCharset
	}
	if f.checksum && decodeChecksum(rest[f.bodyLen:]) != uint64(crc32.Update(head.crc, castagnoli, stringBytes(rest[:f.bodyLen]))) {
		return parsedKey{}, errChecksum
	}
	return parsedKey{Environment: env, DisplayPrefix: s[:f.display], body: len(head.text)}, nil
}

func (f *keyFormat) tailLen() int {
	if f.checksum {
		return f.bodyLen + checksumLength
	}
	return f.bodyLen
}

// generate returns a new key for env whose body is route (see [Router];
// "" for none) followed by characters read from crypto/rand. An empty env
// selects the format's default environment; a format without
// environments accepts only "".
func (f *keyFormat) generate(env, route string) (Secret, error) {
	if len(f.envs) > 0 && env == "" {
		env = f.envs[0]
	}
	switch {
	case len(f.envs) == 0 && env != "":
		return Secret{}, invalid("environment", "this key format has no environments")
	case len(f.envs) > 0 && !f.hasEnv(env):
		return Secret{}, invalid("environment", "must be one of %q", f.envs)
	}
	n := len(f.prefix) + f.tailLen()
	if env != "" {
		n += len(env) + 1
	}
	buf := make([]byte, 0, n)
	buf = append(buf, f.prefix...)
	if env != "" {
		buf = append(buf, env...)
		buf = append(buf, '_')
	}
	// The route leads the body, inside the checksum; the rest is random.
	buf = append(buf, route...)
	buf = appendRandomBase62(buf, f.bodyLen-len(route))
	if f.checksum {
		buf = appendChecksum(buf, crc32.Checksum(buf, castagnoli))
	}
	return newSecret(string(buf), f.display), nil
}

// appendRandomBase62 appends n uniformly random base62 characters. Bytes of
// 248 or more are rejected (248 = 4*62) so that no character is favoured.
func appendRandomBase62(buf []byte, n int) []byte {
	var pool [2 * maxBodyLength]byte
	for n > 0 {
		// crypto/rand.Read never returns an error; it crashes the program
		// if the system's randomness is unavailable.
		_, _ = rand.Read(pool[:])
		for _, b := range pool {
			if b >= 248 {
				continue
			}
			buf = append(buf, base62.Digits[b%62])
			if n--; n == 0 {
				break
			}
		}
	}
	return buf
}

func appendChecksum(buf []byte, sum uint32) []byte {
	var digits [checksumLength]byte
	v := uint64(sum)
	for i := checksumLength - 1; i >= 0; i-- {
		digits[i] = base62.Digits[v%62]
		v /= 62
	}
	return append(buf, digits[:]...)
}

// decodeChecksum returns the value of checksumLength base62 digits, which
// the caller has checked. The digits are weighted independently rather
// than in a multiply chain.
func decodeChecksum(digits string) uint64 {
	const b1, b2, b3, b4, b5 = 62, 62 * 62, 62 * 62 * 62, 62 * 62 * 62 * 62, 62 * 62 * 62 * 62 * 62
	_ = digits[checksumLength-1]
	return uint64(base62Value[digits[0]])*b5 + uint64(base62Value[digits[1]])*b4 + uint64(base62Value[digits[2]])*b3 +
		uint64(base62Value[digits[3]])*b2 + uint64(base62Value[digits[4]])*b1 + uint64(base62Value[digits[5]])
}

// stringBytes views s as a byte slice without copying. The callers only
// read the slice (hashing, checksums), which keeps the hot path free of
// allocations.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
