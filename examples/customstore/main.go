// Command customstore shows keygate on a store of your own: fileStore
// (filestore.go) keeps keys in a JSON file and passes the conformance
// suite, store/storetest (see filestore_test.go). Run it, and it issues a
// key, verifies it, and shows that the file holds only its hash:
//
//	go run ./examples/customstore
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/cachestore"
)

func main() {
	dir, err := os.MkdirTemp("", "keygate-customstore-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")

	store, err := openFileStore(path)
	if err != nil {
		log.Fatal(err)
	}
	// The cache makes verification as cheap as the memory store, whatever
	// the store behind costs.
	cached, err := cachestore.New(store, cachestore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer cached.Close()
	svc, err := apikey.New(cached, apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	issued, err := svc.Create(ctx, apikey.CreateParams{Owner: "acct_42", Name: "file-backed", Permissions: []apikey.Permission{apikey.Read}})
	if err != nil {
		log.Fatal(err)
	}
	p, err := svc.Verify(ctx, issued.Secret.Reveal())
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("issued %s for %s; verified: %v\n", issued.Key.DisplayPrefix, p.Owner(), p.Has(apikey.Read))
	hash := apikey.Hash(sha256.Sum256([]byte(issued.Secret.Reveal())))
	fmt.Printf("%s holds the key: %v; its SHA-256: %v\n", path,
		strings.Contains(string(data), issued.Secret.Reveal()),
		strings.Contains(string(data), hex.EncodeToString(hash[:])))
}
