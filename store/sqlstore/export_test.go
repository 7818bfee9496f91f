package sqlstore

import "context"

// MigrateTo applies the migrations up to version last, for tests of a
// later migration's upgrade path.
func (s *Store) MigrateTo(ctx context.Context, last int) error { return s.migrateTo(ctx, last) }
