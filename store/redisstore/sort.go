package redisstore

import (
	"cmp"
	"slices"
	"time"

	"github.com/keygate/keygate/apikey"
)

// sortRecords orders recs by the given time and then by ID, as the
// [apikey.Store] contract requires of List and Expiring.
func sortRecords(recs []*apikey.Record, at func(*apikey.Record) time.Time) {
	slices.SortFunc(recs, func(a, b *apikey.Record) int {
		return cmp.Or(at(a).Compare(at(b)), cmp.Compare(a.ID, b.ID))
	})
}
