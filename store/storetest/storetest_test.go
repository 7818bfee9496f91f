package storetest_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/storetest"
)

// nilLookup answers every lookup with neither a record nor an error.
type nilLookup struct{ *memstore.Store }

func (nilLookup) Lookup(context.Context, apikey.Hash, string) (*apikey.Record, error) {
	return nil, nil
}

// unorderedList returns a list in random order, as a store that ranges
// over a map does.
type unorderedList struct{ *memstore.Store }

func (s unorderedList) List(ctx context.Context, owner string) ([]*apikey.Record, error) {
	recs, err := s.Store.List(ctx, owner)
	rand.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	return recs, err
}

var broken = map[string]func() apikey.Store{
	"nil-lookup":     func() apikey.Store { return nilLookup{memstore.New()} },
	"unordered-list": func() apikey.Store { return unorderedList{memstore.New()} },
}

// TestBrokenStore is the suite run on a broken store, in a child process
// (see TestSuiteCatchesBrokenStores); it skips otherwise.
func TestBrokenStore(t *testing.T) {
	newStore := broken[os.Getenv("STORETEST_BROKEN")]
	if newStore == nil {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	storetest.Run(t, func(*testing.T) apikey.Store { return newStore() })
}

// The suite fails a broken store with a message that says what is wrong,
// every time, and never panics.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	for name, want := range map[string]string{
		"nil-lookup":     "Lookup returned a nil record and a nil error",
		"unordered-list": "ordered by CreatedAt, then ID",
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$", "-test.count=1")
			cmd.Env = append(os.Environ(), "STORETEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a %s store:\n%s", name, out)
			}
			if strings.Contains(string(out), "panic") {
				t.Fatalf("the suite panicked on a %s store:\n%s", name, out)
			}
			if !strings.Contains(string(out), want) {
				t.Fatalf("the suite's failure does not say %q:\n%s", want, out)
			}
		})
	}
}
