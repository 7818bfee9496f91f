package apikey_test

import (
	"hash/crc32"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
)

// Independent descriptions of what each format may accept: a regular
// expression for the shape and, for checksummed formats, a CRC32 recomputed
// here rather than by the package.
var fuzzFormats = []struct {
	name     string
	format   *apikey.Format
	envs     []string
	shape    *regexp.Regexp
	checksum bool
}{
	{"kg", apikey.DefaultFormat(), []string{"live", "test"}, regexp.MustCompile(`^kg_(live|test)_[0-9A-Za-z]{38}$`), true},
	{"idc", idcFormat, nil, regexp.MustCompile(`^idc_[0-9A-Za-z]{32}$`), false},
	{"sk", skFormat, []string{"live", "test"}, regexp.MustCompile(`^sk_(live|test)_[0-9A-Za-z]{48}$`), false},
}

func checksumOK(key string) bool {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var v uint64
	for _, c := range key[len(key)-6:] {
		v = v*62 + uint64(strings.IndexRune(digits, c))
	}
	return v == uint64(crc32.Checksum([]byte(key[:len(key)-6]), crc32.MakeTable(crc32.Castagnoli)))
}

// FuzzParse checks that Parse never panics and never accepts a string that
// Generate could not have produced. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, ff := range fuzzFormats {
		for _, env := range append(ff.envs, "") {
			if s, err := ff.format.Generate(env); err == nil {
				f.Add(s.Reveal())
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ff := range fuzzFormats {
			parsed, err := ff.format.Parse(s)
			if err != nil {
				continue
			}
			if !ff.shape.MatchString(s) || (ff.checksum && !checksumOK(s)) {
				t.Fatalf("%s format accepted %q", ff.name, s)
			}
			if !strings.HasPrefix(s, parsed.DisplayPrefix) || !strings.Contains(s, "_"+parsed.Environment) {
				t.Fatalf("parts %+v do not belong to %q", parsed, s)
			}
		}
	})
}
