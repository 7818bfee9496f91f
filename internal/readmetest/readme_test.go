// Package readmetest checks that every Go snippet in the README is quoted
// from a Go file of the module, so that the snippets compile (the module's
// tests and vet build every file) and cannot drift from the code.
package readmetest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const root = "../.."

// lines returns s's lines with surrounding white space removed: snippets
// are quoted from inside functions, at another indentation.
func lines(s string) []string {
	out := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// snippets returns the bodies of the README's ```go blocks.
func snippets(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	rest := string(readme)
	for {
		_, after, ok := strings.Cut(rest, "\n```go\n")
		if !ok {
			return out
		}
		body, tail, ok := strings.Cut(after, "\n```\n")
		if !ok {
			t.Fatalf("README: a go block is never closed: %.60q", after)
		}
		out = append(out, body)
		rest = tail
	}
}

// sources returns the lines of every Go file of the repository.
func sources(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go"):
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = lines(string(src))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contains reports whether want stands in have as consecutive lines.
func contains(have, want []string) bool {
	for i := 0; i+len(want) <= len(have); i++ {
		j := 0
		for j < len(want) && have[i+j] == want[j] {
			j++
		}
		if j == len(want) {
			return true
		}
	}
	return false
}

func TestREADMESnippetsAreQuotedFromCode(t *testing.T) {
	blocks := snippets(t)
	if len(blocks) < 5 {
		t.Fatalf("found %d Go snippets in the README; the check is looking in the wrong place", len(blocks))
	}
	files := sources(t)
	for _, block := range blocks {
		want := lines(block)
		found := false
		for _, have := range files {
			if contains(have, want) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("this README snippet is not in any Go file of the module, so nothing compiles it; quote it from an example:\n%s", block)
		}
	}
}

// Public documentation speaks of the project only: the README and the
// Go doc comments never point at the team's internal documents.
func TestPublicDocsNameNoInternalDocuments(t *testing.T) {
	internal := regexp.MustCompile(`DESIGN\.md|STYLE\.md|\bseed (\d{3}|plans?|documents?)\b|seed \d{3}'s`)
	check := func(path, text string) {
		if m := internal.FindString(text); m != "" {
			t.Errorf("%s names an internal document: %q", path, m)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	check("README.md", string(readme))
	for path, src := range sources(t) {
		if !strings.HasSuffix(path, "_test.go") {
			check(path, strings.Join(src, "\n"))
		}
	}
}
