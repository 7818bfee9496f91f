package memstore

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/keygate/keygate/apikey"
)

// index maps key hashes to records for the verification path. It is an
// open-addressing table with linear probing whose slots are atomic
// pointers: readers take no lock and write nothing, so concurrent
// verifications never contend. Writers must be serialised by the caller
// (Store.mu). Key hashes are SHA-256 digests, uniformly distributed, so
// their first bytes serve directly as the table position.
//
// A resize builds a new table and publishes it atomically; a reader still
// on the old table sees the state from before the resize began, which is
// a consistent snapshot. Deleted slots hold a tombstone until the next
// resize, which is triggered by live plus dead slots, so memory follows
// the number of live keys.
type index struct {
	tab  atomic.Pointer[table]
	live int // records stored; guarded by the writers' lock
	used int // slots not nil (live + tombstones); guarded likewise
}

type table struct {
	slots []slot
	mask  uint64
}

// slot holds a record and the first 8 bytes of its hash, so that probing
// past other keys (every miss) compares tags in the table and never
// dereferences their records. A writer stores tag before rec and a reader
// loads rec before tag, so a reader that sees a record sees its tag.
type slot struct {
	rec atomic.Pointer[apikey.Record]
	tag atomic.Uint64
}

// tombstone marks a deleted slot, so that probe chains through it stay
// intact.
var tombstone = new(apikey.Record)

const minTableSize = 16

func newIndex() *index {
	ix := &index{}
	ix.tab.Store(newTable(minTableSize))
	return ix
}

func newTable(size int) *table {
	return &table{slots: make([]slot, size), mask: uint64(size - 1)}
}

// tagOf is both the home position of a hash and its tag.
func tagOf(h *apikey.Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

func (sl *slot) set(rec *apikey.Record) {
	sl.tag.Store(tagOf(&rec.Hash))
	sl.rec.Store(rec)
}

// get returns the record stored for h, or nil. It never blocks.
func (ix *index) get(h apikey.Hash) *apikey.Record {
	t := ix.tab.Load()
	tag := tagOf(&h)
	for i := tag & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		rec := sl.rec.Load()
		if rec == nil {
			return nil
		}
		if sl.tag.Load() == tag && rec != tombstone && rec.Hash == h {
			return rec
		}
	}
}

// put stores rec under rec.Hash, replacing a record with the same hash.
func (ix *index) put(rec *apikey.Record) {
	if (ix.used+1)*4 > len(ix.tab.Load().slots)*3 {
		ix.resize()
	}
	t := ix.tab.Load()
	free := -1
	for i := tagOf(&rec.Hash) & t.mask; ; i = (i + 1) & t.mask {
		cur := t.slots[i].rec.Load()
		switch {
		case cur == nil:
			if free < 0 {
				free = int(i)
				ix.used++
			}
			t.slots[free].set(rec)
			ix.live++
			return
		case cur == tombstone:
			if free < 0 {
				free = int(i)
			}
		case cur.Hash == rec.Hash:
			t.slots[i].rec.Store(rec)
			return
		}
	}
}

// remove deletes the record stored for h, if any.
func (ix *index) remove(h apikey.Hash) {
	t := ix.tab.Load()
	for i := tagOf(&h) & t.mask; ; i = (i + 1) & t.mask {
		rec := t.slots[i].rec.Load()
		if rec == nil {
			return
		}
		if rec != tombstone && rec.Hash == h {
			t.slots[i].rec.Store(tombstone)
			ix.live--
			return
		}
	}
}

// resize rebuilds the table at a load of at most one half, dropping
// tombstones, and publishes it.
func (ix *index) resize() {
	size := minTableSize
	for size < 2*(ix.live+1) {
		size *= 2
	}
	old := ix.tab.Load()
	t := newTable(size)
	for i := range old.slots {
		rec := old.slots[i].rec.Load()
		if rec == nil || rec == tombstone {
			continue
		}
		j := tagOf(&rec.Hash) & t.mask
		for t.slots[j].rec.Load() != nil {
			j = (j + 1) & t.mask
		}
		t.slots[j].set(rec)
	}
	ix.used = ix.live
	ix.tab.Store(t)
}
