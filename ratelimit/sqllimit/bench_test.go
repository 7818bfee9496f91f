package sqllimit_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/sqltest"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/sqllimit"
	"github.com/keygate/keygate/store/sqlstore"
)

// BenchmarkSQL decides a request on each dialect: exact (one
// transaction), against the floor of any limiter that keeps state in
// the database (a transaction that locks one row and writes it), with
// the account's windows and the key's (two rows), and local-first on a
// busy key, reporting the database calls per request. From one goroutine
// and from 16.
func BenchmarkSQL(b *testing.B) {
	ctx := context.Background()
	window := ratelimit.Window{Name: "min", Limit: 1_000_000_000, Period: time.Minute}
	policy, err := ratelimit.NewPolicy("bench", window, ratelimit.PerDay(1<<50))
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range sqltest.Dialects {
		db, _ := migrated(b, d)
		exact := limiter(b, db, sqllimit.Config{Dialect: d}, nil)
		local := limiter(b, db, sqllimit.Config{Dialect: d, Local: &sqllimit.Local{}}, nil)
		lockWrite := lockAndWrite(d)
		run := map[string]func(key string) error{
			"floor=lock-and-write-one-row": func(key string) error { return transact(ctx, db, lockWrite, key) },
			"exact": func(key string) error {
				_, err := exact.Allow(ctx, ratelimit.Request{Account: key, AccountPolicy: policy, Key: key, Cost: 1})
				return err
			},
			"exact-account+key": func(key string) error {
				_, err := exact.Allow(ctx, ratelimit.Request{Account: key, AccountPolicy: policy, Key: key, KeyPolicy: policy, Cost: 1})
				return err
			},
			"local-first": func(key string) error {
				_, err := local.Allow(ctx, ratelimit.Request{Account: key, AccountPolicy: policy, Key: key, Cost: 1})
				return err
			},
		}
		for _, name := range []string{"floor=lock-and-write-one-row", "exact", "exact-account+key", "local-first"} {
			fn := run[name]
			if err := fn("key_1"); err != nil { // the rows exist: steady state
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%s/goroutines=1", d, name), func(b *testing.B) {
				before := exact.Calls() + local.Calls()
				b.ReportAllocs()
				for b.Loop() {
					if err := fn("key_1"); err != nil {
						b.Fatal(err)
					}
				}
				if name != "floor=lock-and-write-one-row" {
					b.ReportMetric(float64(exact.Calls()+local.Calls()-before)/float64(b.N), "db-calls/op")
				}
			})
			b.Run(fmt.Sprintf("%s/%s/goroutines=16", d, name), func(b *testing.B) {
				b.SetParallelism(8) // 8 x GOMAXPROCS(2)
				var n atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					key := fmt.Sprint("key_", n.Add(1)%4) // four accounts, four requests at once on each
					for pb.Next() {
						if err := fn(key); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// lockAndWrite returns the statements of the floor: read one row of
// keygate_limits locked, write it back.
func lockAndWrite(d sqlstore.Dialect) [3]string {
	if d == sqlstore.Postgres {
		return [3]string{
			"INSERT INTO keygate_limits (name, state, expires_at) VALUES ($1, '', 0) ON CONFLICT (name) DO NOTHING",
			"SELECT state FROM keygate_limits WHERE name = $1 FOR UPDATE",
			"UPDATE keygate_limits SET state = $1 WHERE name = $2",
		}
	}
	lock := "SELECT state FROM keygate_limits WHERE name = ? FOR UPDATE"
	create := "INSERT INTO keygate_limits (name, state, expires_at) VALUES (?, '', 0) ON DUPLICATE KEY UPDATE name = name"
	if d == sqlstore.SQLite {
		lock = "SELECT state FROM keygate_limits WHERE name = ?"
		create = "INSERT INTO keygate_limits (name, state, expires_at) VALUES (?, '', 0) ON CONFLICT (name) DO NOTHING"
	}
	return [3]string{create, lock, "UPDATE keygate_limits SET state = ? WHERE name = ?"}
}

func transact(ctx context.Context, db *sql.DB, stmts [3]string, key string) error {
	name := "floor:" + key
	if _, err := db.ExecContext(ctx, stmts[0], name); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	var state string
	if err := tx.QueryRowContext(ctx, stmts[1], name).Scan(&state); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, stmts[2], fmt.Sprint("60000000000 60 ", time.Now().UnixNano(), " 0"), name); err != nil {
		return err
	}
	return tx.Commit()
}
