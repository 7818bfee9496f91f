package sqlstore

import (
	"context"
	"database/sql"
)

// MigrateTo applies the migrations up to version last, for tests of a
// later migration's upgrade path.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, last int) error {
	s, err := newStore(db, Config{Dialect: d})
	if err != nil {
		return err
	}
	return s.migrateTo(ctx, last)
}
