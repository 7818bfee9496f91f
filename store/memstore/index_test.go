package memstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/keygate/apikey"
)

func rec(i int) *apikey.Record {
	return &apikey.Record{Key: apikey.Key{ID: fmt.Sprint(i)}, Hash: apikey.HashKey(fmt.Sprint("k", i))}
}

func TestIndexPutGetRemove(t *testing.T) {
	t.Parallel()
	ix := newIndex()
	const n = 10_000
	for i := range n {
		ix.put(rec(i))
	}
	assert.Equal(t, n, ix.live)
	for i := range n {
		got := ix.get(rec(i).Hash)
		require.NotNil(t, got, i)
		assert.Equal(t, fmt.Sprint(i), got.ID)
	}
	assert.Nil(t, ix.get(apikey.HashKey("absent")))

	replaced := rec(7)
	replaced.Name = "replaced"
	ix.put(replaced)
	assert.Equal(t, "replaced", ix.get(replaced.Hash).Name)
	assert.Equal(t, n, ix.live, "replacing does not add")

	for i := 0; i < n; i += 2 {
		ix.remove(rec(i).Hash)
	}
	ix.remove(apikey.HashKey("absent"))
	assert.Equal(t, n/2, ix.live)
	for i := range n {
		assert.Equal(t, i%2 == 1, ix.get(rec(i).Hash) != nil, i)
	}
}

// Churn (insert, delete, repeat) keeps the table sized by live records:
// tombstones are dropped at the next resize rather than accumulating.
func TestIndexChurnStaysBounded(t *testing.T) {
	t.Parallel()
	ix := newIndex()
	for round := range 200 {
		for i := range 100 {
			ix.put(rec(round*100 + i))
		}
		for i := range 100 {
			ix.remove(rec(round*100 + i).Hash)
		}
	}
	assert.Zero(t, ix.live)
	assert.LessOrEqual(t, len(ix.tab.Load().slots), 512)
}

// Readers never block and, once a write has returned, see it.
func TestIndexConcurrentReaders(t *testing.T) {
	t.Parallel()
	ix := newIndex()
	var mu sync.Mutex // the writers' lock, as Store.mu
	const n = 2_000
	var written atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for written.Load() < n {
				w := int(written.Load())
				for i := 0; i < w; i += 97 {
					if ix.get(rec(i).Hash) == nil {
						t.Errorf("record %d missing after its put returned", i)
						return
					}
				}
			}
		}()
	}
	for i := range n {
		mu.Lock()
		ix.put(rec(i))
		mu.Unlock()
		written.Store(int64(i + 1))
	}
	wg.Wait()
}
