package apikey_test

import (
	"context"
	"errors"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
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

// FuzzListCursor checks that a list cursor from a client, whatever its
// bytes, either pages through the owner's own keys or is refused as
// bad input: never a panic, never another owner's key, never a store
// error. The seed corpus is in testdata/fuzz/FuzzListCursor.
func FuzzListCursor(f *testing.F) {
	svc, err := apikey.New(memstore.New(), apikey.Config{})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := svc.Create(ctx, apikey.CreateParams{Owner: "mine"}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := svc.Create(ctx, apikey.CreateParams{Owner: "theirs"}); err != nil {
		f.Fatal(err)
	}
	page, err := svc.ListPage(ctx, "mine", "", 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(page.Next)
	f.Add("")
	f.Add("MTIzLmFiYw")
	f.Fuzz(func(t *testing.T, cursor string) {
		page, err := svc.ListPage(ctx, "mine", cursor, 2)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidInput) {
				t.Fatalf("cursor %q: %v, want invalid input", cursor, err)
			}
			return
		}
		for _, k := range page.Items {
			if k.Owner != "mine" {
				t.Fatalf("cursor %q listed another owner's key", cursor)
			}
		}
	})
}
