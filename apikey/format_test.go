package apikey_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
)

// The seed formats: IdentityCall's idc_ + 32 alphanumerics, CallCov's and
// the generic vendor's sk_live_/sk_test_ + 48, and keygate's default.
var (
	idcFormat = mustFormat(apikey.FormatConfig{Prefix: "idc", BodyLength: 32, NoChecksum: true})
	skFormat  = mustFormat(apikey.FormatConfig{Prefix: "sk", Environments: []string{"live", "test"}, BodyLength: 48, NoChecksum: true})
)

func mustFormat(cfg apikey.FormatConfig) *apikey.Format {
	f, err := apikey.NewFormat(cfg)
	if err != nil {
		panic(err)
	}
	return f
}

func TestSeedFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		format  *apikey.Format
		env     string
		pattern string
		display string
	}{
		{"seed 000 idc", idcFormat, "", `^idc_[0-9A-Za-z]{32}$`, `^idc_[0-9A-Za-z]{10}$`},
		{"seed 001 sk_live", skFormat, "live", `^sk_live_[0-9A-Za-z]{48}$`, `^sk_live_[0-9A-Za-z]{6}$`},
		{"seed 003 sk_test", skFormat, "test", `^sk_test_[0-9A-Za-z]{48}$`, `^sk_test_[0-9A-Za-z]{6}$`},
		{"sk default env is live", skFormat, "", `^sk_live_[0-9A-Za-z]{48}$`, `^sk_live_[0-9A-Za-z]{6}$`},
		{"keygate default", apikey.DefaultFormat(), "", `^kg_live_[0-9A-Za-z]{38}$`, `^kg_live_[0-9A-Za-z]{6}$`},
		{"keygate test env", apikey.DefaultFormat(), "test", `^kg_test_[0-9A-Za-z]{38}$`, `^kg_test_[0-9A-Za-z]{6}$`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := map[string]bool{}
			for range 200 {
				s, err := tc.format.Generate(tc.env)
				require.NoError(t, err)
				key := s.Reveal()
				assert.Regexp(t, regexp.MustCompile(tc.pattern), key)
				assert.False(t, seen[key], "duplicate key generated")
				seen[key] = true

				parsed, err := tc.format.Parse(key)
				require.NoError(t, err)
				assert.Regexp(t, regexp.MustCompile(tc.display), parsed.DisplayPrefix)
				assert.Equal(t, key[:len(parsed.DisplayPrefix)], parsed.DisplayPrefix)
				assert.Equal(t, strings.Split(key, "_")[1:len(strings.Split(key, "_"))-1], nonEmpty(parsed.Environment))
			}
		})
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return []string{}
	}
	return []string{s}
}

// The sample key printed in seed 001 has 50 characters after sk_live_,
// though its text promises 48; both are expressible.
func TestSeedSampleKeys(t *testing.T) {
	t.Parallel()
	sample := "sk_live_abc123def456ghi789jkl012mno345pqr678stu901vwx234yz"
	_, err := skFormat.Parse(sample)
	require.ErrorIs(t, err, apikey.ErrMalformed)
	fifty := mustFormat(apikey.FormatConfig{Prefix: "sk", Environments: []string{"live", "test"}, BodyLength: 50, NoChecksum: true})
	parsed, err := fifty.Parse(sample)
	require.NoError(t, err)
	assert.Equal(t, "sk_live_abc123", parsed.DisplayPrefix, "seed 001's key_prefix is the first 14 characters")

	_, err = idcFormat.Parse("idc_" + strings.Repeat("x", 32))
	require.NoError(t, err)
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good, err := apikey.DefaultFormat().Generate("live")
	require.NoError(t, err)
	key := good.Reveal()
	body := key[len("kg_live_"):]
	tests := []struct {
		name, key, reason string
	}{
		{"empty", "", "empty"},
		{"one megabyte", strings.Repeat("a", 1<<20), "wrong length"},
		{"too short", key[:len(key)-1], "wrong length"},
		{"too long", key + "a", "wrong length"},
		{"wrong prefix", "sk_live_" + body, "wrong prefix"},
		{"upper-case prefix", "KG_live_" + body, "wrong prefix"},
		{"unknown environment", "kg_prod_" + body, "unknown environment"},
		{"environment without separator", "kg_liveX" + body, "unknown environment"},
		{"dash in body", "kg_live_-" + body[1:], "character outside base62"},
		{"space in body", "kg_live_ " + body[1:], "character outside base62"},
		{"non-ASCII in body", "kg_live_é" + body[2:], "character outside base62"},
		{"NUL in body", "kg_live_\x00" + body[1:], "character outside base62"},
		{"bad checksum", key[:len(key)-1] + flip(key[len(key)-1]), "checksum mismatch"},
		{"checksum above 2^32", key[:len(key)-6] + "zzzzzz", "checksum mismatch"},
		{"bearer prefix left in", "Bearer " + key[:len(key)-7], "wrong prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := apikey.DefaultFormat().Parse(tc.key)
			require.ErrorIs(t, err, apikey.ErrMalformed)
			assert.Contains(t, err.Error(), tc.reason)
			assert.NotContains(t, err.Error(), body[:8], "an error never quotes the key")
		})
	}
	_, err = idcFormat.Parse("idc_live_" + strings.Repeat("a", 27))
	require.ErrorIs(t, err, apikey.ErrMalformed, "a format without environments takes none")
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// A one-character typo anywhere in a checksummed key, or two adjacent
// characters swapped, is caught by Parse alone.
func TestParseCatchesEveryTypo(t *testing.T) {
	t.Parallel()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
	for range 20 {
		s, err := apikey.DefaultFormat().Generate("")
		require.NoError(t, err)
		key := []byte(s.Reveal())
		for i := range key {
			orig := key[i]
			for j := range len(alphabet) {
				if alphabet[j] == orig {
					continue
				}
				key[i] = alphabet[j]
				_, err := apikey.DefaultFormat().Parse(string(key))
				require.ErrorIs(t, err, apikey.ErrMalformed, "typo at %d accepted", i)
			}
			key[i] = orig
			if i+1 < len(key) && key[i] != key[i+1] {
				key[i], key[i+1] = key[i+1], key[i]
				_, err := apikey.DefaultFormat().Parse(string(key))
				require.ErrorIs(t, err, apikey.ErrMalformed, "transposition at %d accepted", i)
				key[i], key[i+1] = key[i+1], key[i]
			}
		}
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	s, err := apikey.DefaultFormat().Generate("")
	require.NoError(t, err)
	key := s.Reveal()
	bad := key[:len(key)-1] + flip(key[len(key)-1])
	huge := strings.Repeat("x", 1<<20)
	for _, in := range []string{key, bad, huge, "", "kg_prod_x"} {
		allocs := testing.AllocsPerRun(100, func() { _, _ = apikey.DefaultFormat().Parse(in) })
		assert.Zero(t, allocs)
	}
}

// The body is uniform over base62: every character appears about equally
// often (a modulo bias would favour the first 8 by 25%).
func TestGenerateIsUniform(t *testing.T) {
	t.Parallel()
	counts := map[rune]int{}
	const keys = 2000
	for range keys {
		s, err := idcFormat.Generate("")
		require.NoError(t, err)
		for _, c := range s.Reveal()[len("idc_"):] {
			counts[c]++
		}
	}
	require.Len(t, counts, 62)
	expected := keys * 32 / 62 // about 1032, standard deviation about 32
	for c, n := range counts {
		assert.InDelta(t, expected, n, 200, "character %q", c)
	}
}

func TestNewFormatRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  apikey.FormatConfig
	}{
		{"prefix with underscore", apikey.FormatConfig{Prefix: "my_co"}},
		{"upper-case prefix", apikey.FormatConfig{Prefix: "SK"}},
		{"prefix starting with a digit", apikey.FormatConfig{Prefix: "1x"}},
		{"prefix too long", apikey.FormatConfig{Prefix: strings.Repeat("a", 17)}},
		{"body below 128 bits", apikey.FormatConfig{BodyLength: 21}},
		{"body too long", apikey.FormatConfig{BodyLength: 65}},
		{"negative body", apikey.FormatConfig{BodyLength: -1}},
		{"empty environment", apikey.FormatConfig{Environments: []string{""}}},
		{"environment with underscore", apikey.FormatConfig{Environments: []string{"a_b"}}},
		{"duplicate environment", apikey.FormatConfig{Environments: []string{"live", "live"}}},
		{"display reveals too much", apikey.FormatConfig{Prefix: "idc", BodyLength: 22, DisplayLength: 6}},
		{"negative display", apikey.FormatConfig{DisplayLength: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := apikey.NewFormat(tc.cfg)
			require.ErrorIs(t, err, apikey.ErrInvalidConfig)
		})
	}
}

// The default display length shrinks rather than reveal more than
// BodyLength-22 body characters.
func TestDisplayPrefixKeepsEntropyHidden(t *testing.T) {
	t.Parallel()
	f := mustFormat(apikey.FormatConfig{Prefix: "kg", BodyLength: 32})
	s, err := f.Generate("")
	require.NoError(t, err)
	parsed, err := f.Parse(s.Reveal())
	require.NoError(t, err)
	assert.Len(t, parsed.DisplayPrefix, len("kg_")+32-22)
}

func TestGenerateRejectsEnvironment(t *testing.T) {
	t.Parallel()
	_, err := idcFormat.Generate("live")
	require.ErrorIs(t, err, apikey.ErrInvalidInput)
	_, err = skFormat.Generate("prod")
	var ie *apikey.InputError
	require.True(t, errors.As(err, &ie))
	assert.Equal(t, "environment", ie.Field)
}
