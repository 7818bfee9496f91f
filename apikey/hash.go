package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"
)

// Hash is the SHA-256 (or HMAC-SHA256, see [Pepper]) digest of a key's full
// text: the only form of a key that a [Store] ever holds.
type Hash [32]byte

// hashKey returns the plain SHA-256 hash of key, the default scheme
// (hash version 0).
func hashKey(key string) Hash { return sha256.Sum256(stringBytes(key)) }

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
	// macs holds crypto/hmac states keyed with the pepper, reused so that
	// verifying a key allocates nothing; nil for plain SHA-256.
	macs *sync.Pool
}

// keyedHash is a reusable HMAC state with room for its input and output.
type keyedHash struct {
	mac hash.Hash
	in  []byte
	out [sha256.Size]byte
}

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
		secret := bytes.Clone(p.Secret)
		schemes = append(schemes, hashScheme{version: p.Version, macs: &sync.Pool{New: func() any {
			return &keyedHash{mac: hmac.New(sha256.New, secret)}
		}}})
	}
	if verifyUnpeppered {
		schemes = append(schemes, hashScheme{})
	}
	return schemes, nil
}

// sum hashes key under the scheme.
func (s *hashScheme) sum(key string) Hash {
	if s.macs == nil {
		return hashKey(key)
	}
	k := s.macs.Get().(*keyedHash)
	defer s.macs.Put(k)
	k.mac.Reset()
	// Copied into a buffer the state owns: a []byte(key) passed to Write
	// would be allocated on every call.
	k.in = append(k.in[:0], key...)
	k.mac.Write(k.in)
	return Hash(k.mac.Sum(k.out[:0]))
}
