package sqllimit_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // or github.com/jackc/pgx/v5/stdlib, github.com/go-sql-driver/mysql

	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/sqllimit"
	"github.com/keygate/keygate/store/sqlstore"
)

// Limits and credits in the database that keeps the keys: every
// instance on it shares them, and a restart keeps what was spent.
func Example() {
	dir, _ := os.MkdirTemp("", "keygate-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "keys.db")+"?_txlock=immediate&_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db, sqlstore.SQLite); err != nil {
		log.Fatal(err)
	}

	limiter, err := sqllimit.New(ctx, db, sqllimit.Config{Dialect: sqlstore.SQLite}) // Local: &sqllimit.Local{} for local-first
	if err != nil {
		log.Fatal(err)
	}
	defer limiter.Close()

	free, _ := ratelimit.DefaultPlans().Lookup("free")
	credits := &ratelimit.Credits{Balance: 2}
	for range 3 {
		d, err := limiter.Allow(ctx, ratelimit.Request{Account: "acct_42", AccountPolicy: free, Key: "key_1", Credits: credits, Cost: 1})
		fmt.Println(d.Allowed, d.Balance, err)
	}
	// Output:
	// true 1 <nil>
	// true 0 <nil>
	// false 0 <nil>
}
