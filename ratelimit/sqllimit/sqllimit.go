// Package sqllimit is the [ratelimit.Limiter] on a SQL database through
// database/sql: PostgreSQL, MySQL or MariaDB, and SQLite, the databases
// store/sqlstore keeps keys in. Every instance on one database shares
// the same limits and credits, and they survive a restart.
//
// It decides as ratelimit.Memory does (GCRA token buckets, fixed windows
// aligned to the Unix epoch, calendar months, all or nothing across an
// account's windows, its key's and its credits, policy changes that keep
// what was spent), on the database's clock, never an instance's: an
// instance's clock only times its leases and the refusals it repeats,
// by Go's monotonic clock, so a wall clock set back or forward on one
// instance changes no decision.
//
// State lives in the table keygate_limits, which [sqlstore.Migrate]
// creates (migration 0009; [sqlstore.Migrations] for a migration tool of
// your own): one row per account's windows, per key's windows and per
// account's credit balance. A request is one short transaction: it locks
// the rows it needs (SELECT ... FOR UPDATE, in the order of their names,
// so that two requests never wait on each other in a cycle; on SQLite
// the database's one write lock, so open it with _txlock=immediate as
// sqlstore asks), decides in Go and writes the rows back when the request
// passes. Concurrent requests for one account queue on its row and none
// is lost; requests of other accounts do not wait. A row is created the
// first time its name spends (in a statement of its own, committed at
// once, that does nothing when another instance created it first).
//
// Rows of idle state go: a row whose state equals a new one (buckets
// full again, fixed windows ended) is deleted by a sweep, every
// [Config].SweepInterval, a minute after that instant at most. A credit
// balance that never returns to its grant (no refill, or refills that
// add) keeps its row: one per account with credits.
//
// With [Config].Local the limiter is local-first, as redislimit's is:
// see [Local].
//
// When the database fails, Allow fails closed by default (an error:
// answer 503) within [Config].Timeout; with [Config].FailOpen it allows
// the request and marks the decision FailedOpen, reporting the error to
// [Config].OnError. After three faults in a row the limiter answers at
// once, without a call, and one request every half second probes whether
// the database is back.
package sqllimit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/binding"
	"github.com/keygate/keygate/internal/breaker"
	"github.com/keygate/keygate/internal/decide"
	"github.com/keygate/keygate/internal/lease"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/store/sqlstore"
	"go.opentelemetry.io/otel/metric"
)

// Config configures a [Limiter]. Dialect is required; the zero value of
// every other field selects the default it names.
type Config struct {
	// Dialect is the database's SQL.
	Dialect sqlstore.Dialect
	// Timeout bounds each Allow within any deadline of the caller's, so
	// that a database that hangs costs a request a bounded time (then an
	// error, or a pass with FailOpen). Default 500 milliseconds.
	Timeout time.Duration
	// FailOpen allows requests when the database cannot answer. Default:
	// fail closed.
	FailOpen bool
	// OnError receives the errors of failed-open requests and of sweeps.
	// Default: ignore.
	OnError func(error)
	// Local, when set, makes the limiter local-first: decisions in
	// process from tokens leased from the database, with the overshoot
	// bound [Local] states. Default: exact, one transaction per request.
	Local *Local
	// SweepInterval is how often rows of idle state are deleted. Default
	// one minute; negative disables the background sweep (call
	// [Limiter.Sweep] yourself).
	SweepInterval time.Duration
	// MeterProvider, when set, reports the circuit breaker through the
	// OpenTelemetry metric API: keygate.breaker.open{component="sqllimit"},
	// the servers whose breaker is open. Default: none.
	MeterProvider metric.MeterProvider
}

// Local configures the local-first mode (see [Config].Local): Share, the
// part of the request's smallest window limit one lease takes, in (0, 1]
// (default 0.01), and TTL, how long a lease's tokens may be spent before
// the rest are dropped (default 1 second).
//
// An instance takes tokens from the database in advance, in the same
// all-or-nothing transaction as an exact decision, and spends them in
// process: a busy key costs one transaction per lease. The tokens an
// instance holds count as spent in the database, so in any interval N
// instances admit at most N × lease requests more than exact mode would
// (with the default Share, N percent of the limit), and tokens unspent
// when a lease ends (after TTL, or when the instance stops or is killed)
// are lost to the window, at most N × lease per TTL; a bucket's return
// as it refills. A request is decided exactly when its lease would be
// under 2 tokens (with the default Share, any window under 200 requests:
// a free plan's 10 per minute stays exact), when it carries credits (they
// are money: never taken ahead) or costs 0, and, near the limit, when
// less than a lease is left.
type Local = lease.Config

// Limiter is a [ratelimit.Limiter] on a SQL database. It is safe for
// concurrent use.
type Limiter struct {
	db      *sql.DB
	cfg     Config
	sql     statements
	local   *lease.Leaser
	windows sync.Map // *ratelimit.Policy -> []binding.Window
	cached  atomic.Int64
	// clock replaces the database's time in the package's own tests
	// (export_test.go); nil everywhere else.
	clock    func() time.Time
	breakers breaker.Set
	// calls counts the decisions made with the database, which the
	// benchmarks report per request.
	calls atomic.Int64
	stop  chan struct{}
	// unobserve ends the breaker's metrics; nil without a MeterProvider.
	unobserve func() error
	done      chan struct{}
	once      sync.Once
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// maxPolicies bounds the policies whose windows are kept, as in
// redislimit: a custom policy is built per account and per change.
const maxPolicies = 1024

// maxName bounds an account's or key's name, for the table's key.
const maxName = 250

// New returns a Limiter on db and starts its background sweep;
// [Limiter.Close] stops it. It fails when the table keygate_limits is
// missing (run [sqlstore.Migrate]) or the database cannot be reached.
func New(ctx context.Context, db *sql.DB, cfg Config) (*Limiter, error) {
	switch cfg.Dialect {
	case sqlstore.Postgres, sqlstore.MySQL, sqlstore.SQLite:
	default:
		return nil, fmt.Errorf("sqllimit: Config.Dialect %q is not postgres, mysql or sqlite", cfg.Dialect)
	}
	if db == nil {
		return nil, errors.New("sqllimit: nil database")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	l := &Limiter{db: db, cfg: cfg, sql: statementsFor(cfg.Dialect), stop: make(chan struct{}), done: make(chan struct{})}
	loc, err := lease.New(cfg.Local, l.exact)
	if err != nil {
		return nil, fmt.Errorf("sqllimit: %w", err)
	}
	l.local = loc
	if cfg.MeterProvider != nil {
		if l.unobserve, err = l.breakers.Observe(cfg.MeterProvider, "sqllimit"); err != nil {
			return nil, fmt.Errorf("sqllimit: %w", err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM keygate_limits WHERE expires_at < 0").Scan(&n); err != nil {
		if pingErr := db.PingContext(ctx); pingErr != nil {
			return nil, fmt.Errorf("sqllimit: reaching the database: %w", pingErr)
		}
		return nil, fmt.Errorf("sqllimit: reading keygate_limits (run sqlstore.Migrate: migration 0009_limits creates it): %w", err)
	}
	interval := cfg.SweepInterval
	if interval == 0 {
		interval = time.Minute
	}
	if interval < 0 {
		close(l.done)
		return l, nil
	}
	go l.sweepEvery(interval)
	return l, nil
}

// Close stops the background sweep and the metrics. The limiter keeps
// working.
func (l *Limiter) Close() error {
	l.once.Do(func() {
		close(l.stop)
		if l.unobserve != nil {
			_ = l.unobserve()
		}
	})
	<-l.done
	return nil
}

func (l *Limiter) sweepEvery(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), max(interval, 10*time.Second))
			if _, err := l.Sweep(ctx); err != nil {
				l.cfg.OnError(err)
			}
			cancel()
		}
	}
}

// sweepBatch bounds the rows one statement of a sweep deletes, so that
// no sweep holds locks for long.
const sweepBatch = 1000

// Sweep deletes the rows whose state equals a new one by the database's
// clock, and returns how many it deleted. The background sweep calls it;
// call it yourself with a negative SweepInterval.
func (l *Limiter) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		var res sql.Result
		var err error
		if l.clock != nil {
			res, err = l.db.ExecContext(ctx, l.sql.sweepAt, l.clock().UnixNano())
		} else {
			res, err = l.db.ExecContext(ctx, l.sql.sweep)
		}
		if err != nil {
			return total, fmt.Errorf("sqllimit: sweep: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqllimit: sweep: %w", err)
		}
		total += int(n)
		if n < sweepBatch {
			return total, nil
		}
	}
}

// limitsOf returns p's windows in nanoseconds, derived once per policy
// and kept (up to maxPolicies); nil for a nil policy.
func (l *Limiter) limitsOf(p *ratelimit.Policy) []binding.Window {
	if p == nil {
		return nil
	}
	if ws, ok := l.windows.Load(p); ok {
		return ws.([]binding.Window)
	}
	var ws []binding.Window
	for _, w := range p.Windows() {
		bw := binding.Window{Limit: w.Limit, Period: int64(w.Period), Monthly: w.Monthly, Unit: 1}
		if !w.Fixed {
			bw.Interval = int64(w.Period) / w.Limit
			bw.Tau = w.Burst * bw.Interval
		}
		ws = append(ws, bw)
	}
	if l.cached.Add(1) > maxPolicies {
		l.windows.Clear()
		l.cached.Store(1)
	}
	actual, _ := l.windows.LoadOrStore(p, ws)
	return actual.([]binding.Window)
}

// Allow implements [ratelimit.Limiter]. Exact: one transaction for the
// account's windows, the key's and the credit balance together.
// Local-first (see [Local]): a transaction per lease. In both modes, a
// refusal is kept in process and repeated without a call until shortly
// before the request would pass, for requests of the same names,
// policies and credits that cost as much or more.
func (l *Limiter) Allow(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	if err := r.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	if len(r.Account) > maxName || len(r.Key) > maxName {
		return ratelimit.Decision{}, fmt.Errorf("sqllimit: an account or key name longer than %d bytes", maxName)
	}
	smallest := int64(math.MaxInt64)
	for _, ws := range [2][]binding.Window{l.limitsOf(r.AccountPolicy), l.limitsOf(r.KeyPolicy)} {
		for _, w := range ws {
			smallest = min(smallest, w.Limit)
		}
	}
	return l.local.Decide(ctx, r, smallest)
}

// row is one row a request decides on.
type row struct {
	name    string
	state   string
	expires int64
	found   bool
}

// exact decides r with one transaction, within Config.Timeout and
// through the breaker.
func (l *Limiter) exact(ctx context.Context, r ratelimit.Request) (ratelimit.Decision, error) {
	l.calls.Add(1)
	tctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	var d ratelimit.Decision
	var corrupt error
	err := l.breakers.Do(ctx, "", func() (err error) {
		d, err = l.decide(tctx, &r)
		if errors.Is(err, errCorrupt) || retryable(err) {
			corrupt = err // the database answered: not a fault of the connection
			return nil
		}
		return err
	})
	if err == nil {
		err = corrupt
	}
	if err != nil {
		err = fmt.Errorf("sqllimit: %w", err)
		if l.cfg.FailOpen {
			l.cfg.OnError(err)
			return ratelimit.Decision{Allowed: true, FailedOpen: true}, nil
		}
		return ratelimit.Decision{}, err
	}
	return d, nil
}

// decide reads r's rows, locked when r spends, decides r and writes the
// rows back when it passes. Rows missing for a request that spends are
// created first, then the transaction starts again.
func (l *Limiter) decide(ctx context.Context, r *ratelimit.Request) (ratelimit.Decision, error) {
	var names []string
	if r.AccountPolicy != nil {
		names = append(names, "a:"+r.Account)
	}
	if r.Credits != nil {
		names = append(names, "c:"+r.Account)
	}
	if r.KeyPolicy != nil {
		names = append(names, "k:"+r.Key)
	}
	sort.Strings(names) // the lock order
	if r.Cost == 0 {
		rows, now, err := l.read(ctx, l.db, &l.sql.peek, names)
		if err != nil {
			return ratelimit.Decision{}, err
		}
		d, _, err := l.compute(r, rows, now)
		return d, err
	}
	var err error
	for range maxTries {
		var d ratelimit.Decision
		var missing []string
		d, missing, err = l.spend(ctx, r, names)
		if retryable(err) {
			continue // the database ended the transaction to break a deadlock: it may run again
		}
		if err != nil || len(missing) == 0 {
			return d, err
		}
		args := make([]any, 0, len(missing))
		for _, name := range missing {
			args = append(args, name)
		}
		if _, err := l.db.ExecContext(ctx, l.sql.create[len(missing)], args...); err != nil {
			return ratelimit.Decision{}, err
		}
	}
	if err != nil {
		return ratelimit.Decision{}, err
	}
	return ratelimit.Decision{}, errors.New("its rows were deleted as fast as they were created")
}

// maxTries bounds the transactions one decision runs: after a row is
// created, or the database ended one to break a deadlock.
const maxTries = 5

// retryable reports the error of a transaction the database ended to
// break a deadlock or a serialization conflict (MySQL 1213, SQLSTATE
// 40001 or 40P01): nothing was written, and it may run again. The
// drivers are not imported, so the text tells.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"Deadlock found", "deadlock detected", "40001", "40P01"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// spend decides r in one transaction, or returns the names of the rows
// that are missing.
func (l *Limiter) spend(ctx context.Context, r *ratelimit.Request, names []string) (ratelimit.Decision, []string, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return ratelimit.Decision{}, nil, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	rows, now, err := l.read(ctx, tx, &l.sql.lock, names)
	if err != nil {
		return ratelimit.Decision{}, nil, err
	}
	var missing []string
	for _, rw := range rows {
		if !rw.found {
			missing = append(missing, rw.name)
		}
	}
	if len(missing) > 0 {
		return ratelimit.Decision{}, missing, nil
	}
	d, writes, err := l.compute(r, rows, now)
	if err != nil || !d.Allowed {
		return d, nil, err // a refusal changes nothing: the transaction ends
	}
	n := len(writes) / 3
	if l.cfg.Dialect == sqlstore.MySQL {
		writes = updateArgs(writes)
	}
	if _, err := tx.ExecContext(ctx, l.sql.write[n], writes...); err != nil {
		return ratelimit.Decision{}, nil, err
	}
	return d, nil, tx.Commit()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// read returns the rows of names (found or not, in the order of names)
// and the database's time, in nanoseconds.
func (l *Limiter) read(ctx context.Context, q querier, query *[4]string, names []string) ([]row, int64, error) {
	args := make([]any, len(names))
	out := make([]row, len(names))
	for i, name := range names {
		args[i], out[i].name = name, name
	}
	res, err := q.QueryContext(ctx, query[len(names)], args...)
	if err != nil {
		return nil, 0, err
	}
	defer res.Close()
	var now int64
	seen := false
	for res.Next() {
		var name, state sql.NullString
		var expires sql.NullInt64
		if err := res.Scan(&now, &name, &state, &expires); err != nil {
			return nil, 0, err
		}
		seen = true
		for i := range out {
			if name.Valid && out[i].name == name.String {
				out[i].state, out[i].expires, out[i].found = state.String, expires.Int64, true
			}
		}
	}
	if err := res.Err(); err != nil {
		return nil, 0, err
	}
	if !seen && len(names) > 0 {
		// No row and so no clock: only a locking read, for rows that are
		// all missing, ends here; they are created before it runs again.
		return out, 0, nil
	}
	now *= 1000 // the database's microseconds
	if l.clock != nil {
		now = l.clock().UnixNano()
	}
	return out, now, nil
}

// slack is how far past the instant a state equals a new one its row's
// expiry is set, so that most writes leave the expiry (and its index) as
// it is.
const slack = int64(time.Minute)

// compute decides r on rows at now, as the memory limiter does, and
// returns the decision and the arguments of the write that records it
// (name, state, expiry per row).
func (l *Limiter) compute(r *ratelimit.Request, rows []row, now int64) (ratelimit.Decision, []any, error) {
	acct, key := l.limitsOf(r.AccountPolicy), l.limitsOf(r.KeyPolicy)
	var ac, kc [binding.MaxWindows]binding.Cell
	var credit creditState
	var sched binding.Credits
	for _, rw := range rows {
		var err error
		switch rw.name[0] {
		case 'a':
			err = cellsOf(rw.state, acct, ac[:], now)
		case 'k':
			err = cellsOf(rw.state, key, kc[:], now)
		case 'c':
			credit, err = parseCredits(rw.state)
		}
		if err != nil {
			return ratelimit.Decision{}, nil, fmt.Errorf("row %q: %w", rw.name, err)
		}
	}
	allowed := true
	for i := range acct {
		allowed = acct[i].Admits(&ac[i], now, r.Cost) && allowed
	}
	for i := range key {
		allowed = key[i].Admits(&kc[i], now, r.Cost) && allowed
	}
	if r.Credits != nil {
		sched = decide.Schedule(r.Credits)
		if !credit.known {
			credit = creditState{grant: sched.Granted, balance: sched.Balance, n: sched.Due(sched.Granted)}
		}
		credit.balance, credit.n = sched.Bring(credit.grant, credit.balance, credit.n, now)
		credit.grant = sched.Granted
		allowed = credit.balance >= r.Cost && allowed
	}
	var states [2*binding.MaxWindows + 1]binding.State
	n := 0
	for i := range acct {
		states[n] = acct[i].Take(&ac[i], now, r.Cost, allowed)
		n++
	}
	for i := range key {
		states[n] = key[i].Take(&kc[i], now, r.Cost, allowed)
		n++
	}
	var balance int64
	if r.Credits != nil {
		if allowed {
			credit.balance -= r.Cost
		}
		balance = credit.balance
		states[n] = sched.Report(credit.balance, credit.n, now, r.Cost, allowed)
		n++
	}
	d := decide.Decision(r, acct, key, allowed, states[:n], balance, now, time.Nanosecond)
	if !allowed || r.Cost == 0 {
		return d, nil, nil
	}
	writes := make([]any, 0, 3*len(rows))
	for _, rw := range rows {
		var state string
		var fresh int64
		switch rw.name[0] {
		case 'a':
			state, fresh = formatWindows(acct, ac[:len(acct)]), binding.FreshAt(acct, ac[:len(acct)])
		case 'k':
			state, fresh = formatWindows(key, kc[:len(key)]), binding.FreshAt(key, kc[:len(key)])
		case 'c':
			state, fresh = formatCredits(credit), creditsFreshAt(&sched, credit, now)
		}
		expires := rw.expires
		switch {
		case fresh <= expires:
		case fresh < math.MaxInt64-slack:
			expires = fresh + slack
		default:
			expires = math.MaxInt64
		}
		writes = append(writes, rw.name, state, expires)
	}
	return d, writes, nil
}

// cellsOf sets cells, the state of windows ws, from a row's state,
// carried over when it was kept under other windows.
func cellsOf(state string, ws []binding.Window, cells []binding.Cell, now int64) error {
	st, err := parseWindows(state)
	if err != nil || st.n == 0 {
		return err
	}
	same := st.n == len(ws)
	for i := 0; same && i < st.n; i++ {
		w, o := &ws[i], &st.was[i]
		same = w.Interval == o.Interval && w.Period == o.Period && w.Monthly == o.Monthly
	}
	if same {
		copy(cells, st.cells[:st.n])
		return nil
	}
	binding.Carry(ws, cells[:len(ws)], st.was[:st.n], st.cells[:st.n], now)
	return nil
}

// creditsFreshAt returns when a balance equals a new state of its grant:
// at the next refill that replaces it, now if it does already, never
// otherwise.
func creditsFreshAt(s *binding.Credits, c creditState, now int64) int64 {
	switch {
	case s.Fresh(c.balance, c.n, now):
		return now
	case s.Refill > 0 && !s.Add:
		return s.At(c.n)
	}
	return math.MaxInt64
}

// statements are the SQL of a dialect. A request names up to three
// rows; the statements for n rows are at index n.
type statements struct {
	dialect sqlstore.Dialect
	clock   string // the database's time, in Unix microseconds
	sweep   string // deletes a batch of fresh rows
	sweepAt string // the same, at a time given in nanoseconds
	// lock reads rows and locks them, in the order of their names; peek
	// reads them without a lock, and the time even when none exists.
	lock, peek [4]string
	// create inserts rows of new state unless they exist, expiring a
	// minute from now so that no sweep takes them before their first
	// use; write sets the state and expiry of rows that exist.
	create, write [4]string
}

func statementsFor(d sqlstore.Dialect) statements {
	s := statements{dialect: d}
	switch d {
	case sqlstore.Postgres:
		s.clock = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
		// PostgreSQL has no DELETE ... LIMIT.
		s.sweepAt = "DELETE FROM keygate_limits WHERE name IN (SELECT name FROM keygate_limits WHERE expires_at < $1 LIMIT 1000)"
		s.sweep = strings.Replace(s.sweepAt, "$1", s.clock+" * 1000", 1)
	case sqlstore.MySQL:
		s.clock = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))"
		s.sweepAt = "DELETE FROM keygate_limits WHERE expires_at < ? LIMIT 1000"
		s.sweep = strings.Replace(s.sweepAt, "?", s.clock+" * 1000", 1)
	default:
		s.clock = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
		s.sweepAt = "DELETE FROM keygate_limits WHERE name IN (SELECT name FROM keygate_limits WHERE expires_at < ? LIMIT 1000)"
		s.sweep = strings.Replace(s.sweepAt, "?", s.clock+" * 1000", 1)
	}
	forUpdate := " FOR UPDATE"
	if d == sqlstore.SQLite {
		forUpdate = "" // the transaction holds the database's write lock
	}
	upsert := " ON CONFLICT (name) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at"
	ignore := " ON CONFLICT (name) DO NOTHING"
	if d == sqlstore.MySQL {
		ignore = " ON DUPLICATE KEY UPDATE name = name"
	}
	for n := 1; n < len(s.lock); n++ {
		s.lock[n] = "SELECT " + s.clock + ", name, state, expires_at FROM keygate_limits WHERE name IN (" + s.params(0, n) + ") ORDER BY name" + forUpdate
		s.peek[n] = "SELECT c.now, l.name, l.state, l.expires_at FROM (SELECT " + s.clock + " AS now) c LEFT JOIN keygate_limits l ON l.name IN (" + s.params(0, n) + ")"
		creates, writes := make([]string, n), make([]string, n)
		for i := range n {
			creates[i] = "(" + s.params(i, 1) + ", '', " + s.clock + " * 1000 + 60000000000)"
			writes[i] = "(" + s.params(3*i, 3) + ")"
		}
		s.create[n] = "INSERT INTO keygate_limits (name, state, expires_at) VALUES " + strings.Join(creates, ", ") + ignore
		s.write[n] = "INSERT INTO keygate_limits (name, state, expires_at) VALUES " + strings.Join(writes, ", ") + upsert
		if d == sqlstore.MySQL {
			// An UPDATE of rows the transaction holds locks nothing more;
			// InnoDB's upsert takes next-key locks, gaps included, which
			// deadlock with another transaction's locking read.
			cases := strings.Repeat(" WHEN ? THEN ?", n)
			s.write[n] = "UPDATE keygate_limits SET state = CASE name" + cases + " END, expires_at = CASE name" + cases +
				" END WHERE name IN (" + s.params(0, n) + ")"
		}
	}
	return s
}

// updateArgs turns the arguments of a write (name, state, expiry per
// row) into those of MySQL's UPDATE: name and state per row, name and
// expiry per row, then the names.
func updateArgs(writes []any) []any {
	n := len(writes) / 3
	out := make([]any, 0, 5*n)
	for i := range n {
		out = append(out, writes[3*i], writes[3*i+1])
	}
	for i := range n {
		out = append(out, writes[3*i], writes[3*i+2])
	}
	for i := range n {
		out = append(out, writes[3*i])
	}
	return out
}

// params returns n placeholders, from the first+1th.
func (s *statements) params(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if s.dialect == sqlstore.Postgres {
			fmt.Fprintf(&b, "$%d", first+i+1)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
