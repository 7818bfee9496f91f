package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // or github.com/jackc/pgx/v5/stdlib, github.com/go-sql-driver/mysql

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store/sqlstore"
)

// Keys in SQLite: they survive a restart of the service.
func Example() {
	dir, _ := os.MkdirTemp("", "keygate-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "keys.db")+"?_txlock=immediate&_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db, sqlstore.SQLite); err != nil { // idempotent; or apply sqlstore.Migrations with your own tool
		log.Fatal(err)
	}
	store, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqlstore.SQLite}) // refuses an outdated schema
	if err != nil {
		log.Fatal(err)
	}
	svc, err := apikey.New(store, apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}

	issued, _ := svc.Create(ctx, apikey.CreateParams{Owner: "acct_42"})
	p, err := svc.Verify(ctx, issued.Secret.Reveal())
	fmt.Println(p.Owner(), err)
	// Output:
	// acct_42 <nil>
}
