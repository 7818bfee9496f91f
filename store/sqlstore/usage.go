package sqlstore

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/usage"
)

// maxEndpointLength bounds an endpoint's name in the schema; a longer one
// counts as usage.OtherEndpoint.
const maxEndpointLength = 255

// batchRows bounds the rows of one INSERT, within every driver's limit on
// placeholders.
const batchRows = 500

// AddUsage implements [usage.Store] in one transaction: the totals of the
// whole batch in one statement (per 500 keys), and the endpoint counts
// likewise. Usage of keys that no longer exist is dropped.
func (s *Store) AddUsage(ctx context.Context, deltas []usage.Delta) error {
	if len(deltas) == 0 {
		return nil
	}
	return s.tx(ctx, "add usage", func(tx *sql.Tx) error {
		ids := make([]any, len(deltas))
		for i, d := range deltas {
			ids[i] = d.KeyID
		}
		known := map[string]bool{}
		err := s.selectIn(ctx, tx, "SELECT id FROM keygate_keys WHERE id IN ", ids, func(rows *sql.Rows) error {
			var id string
			err := rows.Scan(&id)
			known[id] = true
			return err
		})
		if err != nil {
			return err
		}
		// The endpoints each key has, but usage.OtherEndpoint.
		kept := map[string]map[string]bool{}
		err = s.selectIn(ctx, tx, "SELECT key_id, endpoint FROM keygate_usage_endpoints WHERE key_id IN ", ids, func(rows *sql.Rows) error {
			var id, ep string
			if err := rows.Scan(&id, &ep); err != nil || ep == usage.OtherEndpoint {
				return err
			}
			if kept[id] == nil {
				kept[id] = map[string]bool{}
			}
			kept[id][ep] = true
			return nil
		})
		if err != nil {
			return err
		}
		var totals, counts [][]any
		for _, d := range deltas {
			if !known[d.KeyID] {
				continue
			}
			totals = append(totals, []any{d.KeyID, d.Requests, d.Errors, d.LastUsedAt.UnixMicro()})
			have := kept[d.KeyID]
			if have == nil {
				have = map[string]bool{}
				kept[d.KeyID] = have
			}
			folded := map[string]int64{}
			for ep, n := range d.ByEndpoint {
				if !have[ep] && ep != usage.OtherEndpoint && (len(have) >= usage.MaxEndpoints || len(ep) > maxEndpointLength) {
					ep = usage.OtherEndpoint
				}
				if ep != usage.OtherEndpoint {
					have[ep] = true
				}
				folded[ep] += n
			}
			for ep, n := range folded {
				counts = append(counts, []any{d.KeyID, ep, n})
			}
		}
		if err := s.upsert(ctx, tx, "keygate_usage", "key_id, requests, errors, last_used_at", "key_id",
			[]string{"requests = %s.requests + %x.requests", "errors = %s.errors + %x.errors", "last_used_at = GREATEST(%s.last_used_at, %x.last_used_at)"},
			totals); err != nil {
			return err
		}
		return s.upsert(ctx, tx, "keygate_usage_endpoints", "key_id, endpoint, requests", "key_id, endpoint",
			[]string{"requests = %s.requests + %x.requests"}, counts)
	})
}

// selectIn runs query, which ends with "IN ", for the values in, 500
// at a time, and calls scan for every row.
func (s *Store) selectIn(ctx context.Context, tx *sql.Tx, query string, in []any, scan func(*sql.Rows) error) error {
	for start := 0; start < len(in); start += batchRows {
		part := in[start:min(start+batchRows, len(in))]
		rows, err := tx.QueryContext(ctx, s.bind(query+"("+placeholders(len(part))+")"), part...)
		if err != nil {
			return wrap("add usage", err)
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return wrap("add usage", err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap("add usage", err)
		}
	}
	return nil
}

// placeholders returns n comma-separated placeholders.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// upsert inserts rows into table, adding to the row that conflicts on
// key instead. Each of sets is "column = expression", where %s stands for
// the stored row and %x for the one inserted.
func (s *Store) upsert(ctx context.Context, tx *sql.Tx, table, cols, key string, sets []string, rows [][]any) error {
	assign := strings.ReplaceAll(strings.Join(sets, ", "), "%s", table)
	switch s.dialect {
	case MySQL:
		// VALUES(col), which MariaDB and MySQL 8 both read (MySQL's
		// newer "AS new" alias is not MariaDB's).
		assign = insertedMySQL.ReplaceAllString(assign, "VALUES($1)")
	case SQLite:
		assign = strings.ReplaceAll(strings.ReplaceAll(assign, "%x", "excluded"), "GREATEST(", "MAX(")
	default:
		assign = strings.ReplaceAll(assign, "%x", "excluded")
	}
	for start := 0; start < len(rows); start += batchRows {
		part := rows[start:min(start+batchRows, len(rows))]
		one := "(" + placeholders(len(part[0])) + ")"
		values := strings.TrimSuffix(strings.Repeat(one+", ", len(part)), ", ")
		query := "INSERT INTO " + table + " (" + cols + ") VALUES " + values
		if s.dialect == MySQL {
			query += " ON DUPLICATE KEY UPDATE " + assign
		} else {
			query += " ON CONFLICT (" + key + ") DO UPDATE SET " + assign
		}
		args := make([]any, 0, len(part)*len(part[0]))
		for _, r := range part {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, s.bind(query), args...); err != nil {
			return wrap("add usage", err)
		}
	}
	return nil
}

var insertedMySQL = regexp.MustCompile(`%x\.(\w+)`)

// Usage implements [usage.Store].
func (s *Store) Usage(ctx context.Context, id string) (usage.Usage, error) {
	u := usage.Usage{ByEndpoint: map[string]int64{}}
	var last int64
	err := s.db.QueryRowContext(ctx, s.bind("SELECT requests, errors, last_used_at FROM keygate_usage WHERE key_id = ?"), id).
		Scan(&u.TotalRequests, &u.Errors, &last)
	switch {
	case err == sql.ErrNoRows:
		return u, nil
	case err != nil:
		return usage.Usage{}, wrap("usage", err)
	}
	u.LastUsedAt = time.UnixMicro(last).UTC()
	rows, err := s.db.QueryContext(ctx, s.bind("SELECT endpoint, requests FROM keygate_usage_endpoints WHERE key_id = ?"), id)
	if err != nil {
		return usage.Usage{}, wrap("usage", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ep string
		var n int64
		if err := rows.Scan(&ep, &n); err != nil {
			return usage.Usage{}, wrap("usage", err)
		}
		u.ByEndpoint[ep] = n
	}
	if err := rows.Err(); err != nil {
		return usage.Usage{}, wrap("usage", err)
	}
	return u, nil
}
