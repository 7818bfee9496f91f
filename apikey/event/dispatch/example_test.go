package dispatch_test

import (
	"context"
	"database/sql"
	"log"
	"os"

	_ "modernc.org/sqlite" // or github.com/jackc/pgx/v5/stdlib, github.com/go-sql-driver/mysql

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event/dispatch"
	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/store/sqlstore"
)

// Every key's events, sent to the operator's webhook from the SQL
// store's outbox: at least once, in order per key, retried for 72 hours.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:keys.db?_txlock=immediate&_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, db, sqlstore.SQLite); err != nil {
		log.Fatal(err)
	}
	store, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: sqlstore.SQLite, Outbox: true})
	if err != nil {
		log.Fatal(err)
	}
	sender, err := webhook.NewSender(webhook.SenderConfig{
		URL:     "https://ops.example.com/keygate-events",
		Secrets: []string{os.Getenv("WEBHOOK_SECRET")}, // from webhook.NewSecret, once
	})
	if err != nil {
		log.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Config{Outbox: store, Sink: sender})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := d.Run(ctx); err != nil {
			log.Print(err) // the receiver answered 410 Gone
		}
	}()

	svc, err := apikey.New(store, apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	_, _ = svc.Create(ctx, apikey.CreateParams{Owner: "acct_42"}) // key.created is on its way
}
