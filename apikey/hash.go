package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Hash is the SHA-256 (or HMAC-SHA256, see [Pepper]) digest of a key's full
// text: the only form of a key that a [Store] ever holds.
type Hash [32]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashKey returns the plain SHA-256 hash of key, the default scheme
// (hash version 0).
func HashKey(key string) Hash { return sha256.Sum256(stringBytes(key)) }

// minPepperLength is the shortest accepted [Pepper] secret, in bytes.
const minPepperLength = 32

// Pepper is a server-side secret for keyed hashing: with peppers configured,
// a store holds HMAC-SHA256(pepper, key) instead of SHA-256(key), so a
// leaked database alone does not let anyone test guesses offline.
//
// Each pepper has a Version (1 or more) that is recorded with every hash it
// made, so peppers can be rotated: new keys use the first pepper of
// [Config].Peppers, and keys hashed with the others still verify until they
// are rotated or expire. A Pepper prints and logs with its secret redacted.
type Pepper struct {
	// Version identifies the pepper; at least 1 and unique.
	Version int
	// Secret is the key material, at least 32 bytes. Load it
	// from a secret manager, never from source code.
	Secret []byte
}

// Format writes the version with the secret redacted, for every fmt verb.
func (p Pepper) Format(f fmt.State, _ rune) { _, _ = f.Write(p.redacted()) }

// MarshalText writes the version with the secret redacted: encoding/json,
// encoding/xml and log/slog use it.
func (p Pepper) MarshalText() ([]byte, error) { return p.redacted(), nil }

func (p Pepper) redacted() []byte {
	return fmt.Appendf(nil, "apikey.Pepper{Version:%d, Secret:%s}", p.Version, redacted)
}

// hashScheme is one way of hashing keys: version 0 is plain SHA-256, higher
// versions are HMAC-SHA256 with the pepper of that version.
type hashScheme struct {
	version int
	keyed   bool
	ipad    [sha256.BlockSize]byte
	opad    [sha256.BlockSize]byte
	secret  []byte
}

// maxInlineKey bounds the keys hashed on the stack; every key a Format
// accepts is shorter (16+1+16+1+64+6 = 104 bytes).
const maxInlineKey = 128

func newHashSchemes(peppers []Pepper, verifyUnpeppered bool) ([]hashScheme, error) {
	if len(peppers) == 0 {
		return []hashScheme{{}}, nil
	}
	schemes := make([]hashScheme, 0, len(peppers)+1)
	seen := make(map[int]bool, len(peppers))
	for _, p := range peppers {
		switch {
		case p.Version < 1:
			return nil, fmt.Errorf("%w: pepper version %d must be 1 or more", ErrInvalidConfig, p.Version)
		case seen[p.Version]:
			return nil, fmt.Errorf("%w: pepper version %d listed twice", ErrInvalidConfig, p.Version)
		case len(p.Secret) < minPepperLength:
			return nil, fmt.Errorf("%w: pepper version %d is shorter than %d bytes", ErrInvalidConfig, p.Version, minPepperLength)
		}
		seen[p.Version] = true
		s := hashScheme{version: p.Version, keyed: true, secret: append([]byte(nil), p.Secret...)}
		k := p.Secret
		if len(k) > sha256.BlockSize {
			sum := sha256.Sum256(k)
			k = sum[:]
		}
		for i := range sha256.BlockSize {
			var b byte
			if i < len(k) {
				b = k[i]
			}
			s.ipad[i] = b ^ 0x36
			s.opad[i] = b ^ 0x5c
		}
		schemes = append(schemes, s)
	}
	if verifyUnpeppered {
		schemes = append(schemes, hashScheme{})
	}
	return schemes, nil
}

// sum hashes key under the scheme. The keyed form is RFC 2104 HMAC computed
// on stack buffers, so it allocates nothing.
func (s *hashScheme) sum(key string) Hash {
	if !s.keyed {
		return HashKey(key)
	}
	if len(key) > maxInlineKey {
		m := hmac.New(sha256.New, s.secret)
		m.Write(stringBytes(key))
		return Hash(m.Sum(nil))
	}
	var inner [sha256.BlockSize + maxInlineKey]byte
	copy(inner[:], s.ipad[:])
	n := copy(inner[sha256.BlockSize:], key)
	innerSum := sha256.Sum256(inner[:sha256.BlockSize+n])
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], s.opad[:])
	copy(outer[sha256.BlockSize:], innerSum[:])
	return sha256.Sum256(outer[:])
}
