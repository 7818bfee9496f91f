package sqlstore

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/apikey/usage"
)

// maxEndpointLength bounds an endpoint's name in the schema; a longer one
// counts as usage.OtherEndpoint.
const maxEndpointLength = 255

// usageRow is one row of keygate_usage_counts as a batch carries it:
// endpoint "" holds the key's totals.
type usageRow struct {
	KeyID      string `json:"key_id"`
	Endpoint   string `json:"endpoint"`
	Requests   int64  `json:"requests"`
	Errors     int64  `json:"errors"`
	LastUsedAt int64  `json:"last_used_at"`
}

// AddUsage implements [usage.Store] in one statement, whatever the size of
// the batch: the batch travels as one JSON parameter, which the database
// reads as a table. Usage of keys that no longer exist is dropped. A key
// keeps at most [usage.MaxEndpoints] endpoints; the statement counts the
// requests to any further endpoint as [usage.OtherEndpoint]. Two batches
// for one key that race to add its last endpoints may each add theirs.
func (s *Store) AddUsage(ctx context.Context, deltas []usage.Delta) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(deltas) == 0 {
		return nil
	}
	byKey := map[string]map[string]*usageRow{}
	var rows []*usageRow
	add := func(id, ep string, req, errs, last int64) {
		eps := byKey[id]
		if eps == nil {
			eps = map[string]*usageRow{}
			byKey[id] = eps
		}
		r := eps[ep]
		if r == nil {
			r = &usageRow{KeyID: id, Endpoint: ep}
			eps[ep] = r
			rows = append(rows, r)
		}
		r.Requests += req
		r.Errors += errs
		r.LastUsedAt = max(r.LastUsedAt, last)
	}
	for _, d := range deltas {
		add(d.KeyID, "", d.Requests, d.Errors, d.LastUsedAt.UnixMicro())
		for ep, n := range d.ByEndpoint {
			if ep == "" || len(ep) > maxEndpointLength {
				ep = usage.OtherEndpoint
			}
			add(d.KeyID, ep, n, 0, 0)
		}
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return wrap("add usage", err)
	}
	if _, err := s.db.ExecContext(ctx, s.addUsage, string(batch)); err != nil {
		return wrap("add usage", err)
	}
	return nil
}

// addUsageSQL returns the statement of [Store.AddUsage] for d. It reads
// the batch as table d, drops the rows of unknown keys (the join), keeps
// an endpoint the key has already or one of its first usage.MaxEndpoints
// (ROW_NUMBER over the key's new endpoints, after those it has), folds the
// rest into usage.OtherEndpoint (GROUP BY) and adds the result to the
// stored counts.
func addUsageSQL(d Dialect) string {
	var batch, upsert string
	const set = "requests = keygate_usage_counts.requests + %x.requests, " +
		"errors = keygate_usage_counts.errors + %x.errors, " +
		"last_used_at = GREATEST(keygate_usage_counts.last_used_at, %x.last_used_at)"
	switch d {
	case Postgres:
		batch = "json_to_recordset(?::json) AS d(key_id TEXT, endpoint TEXT, requests BIGINT, errors BIGINT, last_used_at BIGINT)"
		upsert = "ON CONFLICT (key_id, endpoint) DO UPDATE SET " + strings.ReplaceAll(set, "%x", "excluded")
	case MySQL:
		batch = "JSON_TABLE(?, '$[*]' COLUMNS (" +
			"key_id VARCHAR(300) PATH '$.key_id', endpoint VARCHAR(300) PATH '$.endpoint', " +
			"requests BIGINT PATH '$.requests', errors BIGINT PATH '$.errors', last_used_at BIGINT PATH '$.last_used_at')) AS d"
		// VALUES(col), which MariaDB and MySQL 8 both read (MySQL's
		// newer "AS new" alias is not MariaDB's).
		upsert = "ON DUPLICATE KEY UPDATE " + strings.NewReplacer("%x.requests", "VALUES(requests)",
			"%x.errors", "VALUES(errors)", "%x.last_used_at", "VALUES(last_used_at)").Replace(set)
	default:
		batch = "(SELECT json_extract(value, '$.key_id') AS key_id, json_extract(value, '$.endpoint') AS endpoint, " +
			"json_extract(value, '$.requests') AS requests, json_extract(value, '$.errors') AS errors, " +
			"json_extract(value, '$.last_used_at') AS last_used_at FROM json_each(?)) AS d"
		upsert = "ON CONFLICT (key_id, endpoint) DO UPDATE SET " +
			strings.ReplaceAll(strings.ReplaceAll(set, "%x", "excluded"), "GREATEST(", "MAX(")
	}
	kept := "d.endpoint IN ('', '" + usage.OtherEndpoint + "') OR c.key_id IS NOT NULL"
	// WHERE true: SQLite's parser needs it before an upsert clause.
	return `INSERT INTO keygate_usage_counts (key_id, endpoint, requests, errors, last_used_at)
SELECT key_id, endpoint, SUM(requests), SUM(errors), MAX(last_used_at) FROM (
    SELECT d.key_id,
        CASE WHEN ` + kept + ` THEN d.endpoint
            WHEN (SELECT COUNT(*) FROM keygate_usage_counts e
                    WHERE e.key_id = d.key_id AND e.endpoint NOT IN ('', '` + usage.OtherEndpoint + `'))
                + ROW_NUMBER() OVER (PARTITION BY d.key_id, CASE WHEN ` + kept + ` THEN 0 ELSE 1 END ORDER BY d.endpoint)
                <= ` + strconv.Itoa(usage.MaxEndpoints) + ` THEN d.endpoint
            ELSE '` + usage.OtherEndpoint + `' END AS endpoint,
        d.requests, d.errors, d.last_used_at
    FROM ` + batch + `
    JOIN keygate_keys k ON k.id = d.key_id
    LEFT JOIN keygate_usage_counts c ON c.key_id = d.key_id AND c.endpoint = d.endpoint
) f WHERE true GROUP BY key_id, endpoint
` + upsert
}

// Usage implements [usage.Store].
func (s *Store) Usage(ctx context.Context, id string) (usage.Usage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u := usage.Usage{ByEndpoint: map[string]int64{}}
	rows, err := s.db.QueryContext(ctx, s.bind("SELECT endpoint, requests, errors, last_used_at FROM keygate_usage_counts WHERE key_id = ?"), id)
	if err != nil {
		return usage.Usage{}, wrap("usage", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ep string
		var n, errs, last int64
		if err := rows.Scan(&ep, &n, &errs, &last); err != nil {
			return usage.Usage{}, wrap("usage", err)
		}
		if ep != "" {
			u.ByEndpoint[ep] = n
			continue
		}
		u.TotalRequests, u.Errors, u.LastUsedAt = n, errs, time.UnixMicro(last).UTC()
	}
	if err := rows.Err(); err != nil {
		return usage.Usage{}, wrap("usage", err)
	}
	return u, nil
}
