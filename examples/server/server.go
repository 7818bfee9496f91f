package main

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/apikey/event"
	"github.com/keygate/keygate/apikey/event/dispatch"
	"github.com/keygate/keygate/apikey/event/notice"
	"github.com/keygate/keygate/apikey/event/webhook"
	"github.com/keygate/keygate/apikey/usage"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/middleware/manage"
	"github.com/keygate/keygate/middleware/scanning"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/redislimit"
	"github.com/keygate/keygate/ratelimit/sqllimit"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/redisstore"
	"github.com/keygate/keygate/store/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// serverConfig is what main reads from the environment; tests set it
// directly. The store is the first of: memory (Memory), Redis (RedisURL),
// PostgreSQL or MySQL (DatabaseURL), SQLite in DataDir.
type serverConfig struct {
	Memory      bool   // keys in memory, lost on restart
	DatabaseURL string // postgres://... or mysql://...
	DataDir     string // SQLite's directory, when nothing else is chosen
	RedisURL    string // "" for the memory store and limiter
	Namespace   string // Redis key namespace
	// LocalLimiter makes the Redis or SQL limiter local-first
	// (LIMITER=local): large windows decided in process from leased
	// tokens.
	LocalLimiter bool
	AdminToken   string // bearer token of the management endpoints
	// WebhookURL receives every event of every key, signed with
	// WebhookSecrets (WEBHOOK_URL, WEBHOOK_SECRET); "" sends none.
	WebhookURL     string
	WebhookSecrets []string
	// AllowPrivateWebhooks lets accounts register http and loopback or
	// private endpoints (WEBHOOK_ALLOW_PRIVATE=1): local development.
	AllowPrivateWebhooks bool
	// GitHubScanningKeys are GitHub's secret-scanning public keys as it
	// serves them (the file GITHUB_SCANNING_KEYS names); nil mounts no
	// scanning handler.
	GitHubScanningKeys []byte
	// GitLabRevocationToken authenticates GitLab's secret detection at
	// /api/v1/secret-scanning/gitlab/v1/... (GITLAB_REVOCATION_TOKEN);
	// "" mounts nothing.
	GitLabRevocationToken string
	// MaxLifetime caps how long a key lives (KEY_MAX_LIFETIME); 0 is no
	// cap.
	MaxLifetime time.Duration
	// Retention is how long revoked and expired keys are kept before an
	// hourly purge deletes them (KEY_RETENTION); 0 keeps them.
	Retention time.Duration
	Clock     func() time.Time
}

// server is the reference service: the key-management endpoints and the
// demo resources.
type server struct {
	handler http.Handler
	closers []func() error
}

func (s *server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

func newServer(cfg serverConfig) (*server, error) {
	if cfg.AdminToken == "" {
		// An empty token would let "Authorization: Bearer " manage keys.
		return nil, errors.New("an admin token is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &server{}
	// Metrics through OpenTelemetry, exported in the Prometheus text
	// format at /metrics: counts and latencies, never a key, key ID or
	// account.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	s.closers = append(s.closers, func() error { return meters.Shutdown(context.Background()) })
	var (
		keys    apikey.Store
		counts  usage.Store
		limiter ratelimit.Limiter
		facts   notice.Store // the store behind any cache: expiry notices
		box     event.Outbox // events to deliver (in memory: until the service stops)
	)
	switch {
	case cfg.Memory:
		mem := memstore.New()
		keys, counts, facts, box = mem, mem, mem, mem
	case cfg.RedisURL != "":
		client, err := redisClient(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		s.closers = append(s.closers, client.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rs, err := redisstore.New(ctx, client, redisstore.Config{Namespace: cfg.Namespace, Outbox: true, MeterProvider: meters})
		if err != nil {
			return nil, err
		}
		cache, err := cachestore.New(rs, cachestore.Config{Clock: cfg.Clock, MeterProvider: meters})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, cache.Close)
		keys, counts, facts, box = cache, rs, rs, rs
		lcfg := redislimit.Config{Prefix: cfg.Namespace + ":rl:", MeterProvider: meters}
		if cfg.LocalLimiter {
			lcfg.Local = &redislimit.Local{}
		}
		limiter, err = redislimit.New(client, lcfg)
		if err != nil {
			return nil, err
		}
	default:
		sqlStore, db, dialect, err := s.openSQL(cfg, meters)
		if err != nil {
			return nil, err
		}
		// Limits and credits in the same database: shared by every
		// instance, kept across restarts.
		lcfg := sqllimit.Config{Dialect: dialect, MeterProvider: meters}
		if cfg.LocalLimiter {
			lcfg.Local = &sqllimit.Local{}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sl, err := sqllimit.New(ctx, db, lcfg)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, sl.Close)
		limiter = sl
		box = sqlStore
		// The store's change feed drops revoked keys from every
		// instance's cache within its poll interval.
		cache, err := cachestore.New(sqlStore, cachestore.Config{Clock: cfg.Clock, MeterProvider: meters})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, cache.Close)
		keys, counts, facts = cache, sqlStore, sqlStore
	}
	if limiter == nil {
		ml := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: cfg.Clock})
		s.closers = append(s.closers, ml.Close)
		limiter = ml
	}
	// limit.threshold, credits.low, credits.exhausted and
	// key.rotation.old_key_used, told once per window, off the request
	// path.
	notices, err := notice.NewLimits(notice.LimitsConfig{Facts: facts, Clock: cfg.Clock})
	if err != nil {
		return nil, err
	}
	s.background(notices.Run)
	demo := newRecordings()
	svc, err := apikey.New(keys, apikey.Config{
		OnRotatedKeyUsed: notices.RotatedKeyUsed,
		Clock:            cfg.Clock,
		Plans:            ratelimit.DefaultPlans(),
		Endpoints:        demo.patterns(),
		MaxLifetime:      cfg.MaxLifetime,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Retention > 0 {
		s.purgeEvery(svc, time.Hour, cfg.Retention)
	}
	if err := s.notify(facts, cfg.Clock); err != nil {
		return nil, err
	}
	var deliveries *webhook.Accounts
	if box != nil {
		if deliveries, err = s.dispatch(cfg, box, facts, svc, meters); err != nil {
			return nil, err
		}
	}
	recorder, err := usage.New(counts, usage.Config{FlushInterval: time.Second})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { return recorder.Close(context.Background()) })

	resources := http.NewServeMux()
	mw, err := middleware.New(middleware.Config{
		Verifier:      svc,
		Notices:       notices,
		MeterProvider: meters,
		Limiter:       limiter,
		Usage:         recorder,
		HideKey:       true,
		Clock:         cfg.Clock,
	})
	if err != nil {
		return nil, err
	}
	demo.register(resources, mw)

	admin := []byte(cfg.AdminToken)
	keysAPI, err := manage.New(manage.Config{
		Service:  svc,
		Usage:    counts,
		Recorder: recorder,
		Clock:    cfg.Clock,
		Limiter:  limiter,
		// Accounts' own webhooks, where events are kept for delivery.
		Webhooks:             box != nil,
		AllowPrivateWebhooks: cfg.AllowPrivateWebhooks,
		WebhookDeliveries:    deliveries,
		// PUT /api/v1/account stands in for the host's billing: here the
		// admin token sets any account's plan, limits and credits.
		AccountUpdates: true,
		// The audit trail's actor: whoever holds the admin token, from
		// the client's address.
		Actor: func(r *http.Request) apikey.Actor {
			return apikey.Actor{ID: "admin", IP: mw.ClientIP(r).String()}
		},
		// Stands in for the host's own login: a static admin token, and
		// X-Account-ID naming the account being managed.
		Authenticate: func(r *http.Request) (string, bool) {
			values := r.Header.Values("Authorization")
			if len(values) != 1 {
				return "", false
			}
			token, ok := middleware.Bearer(values[0])
			if !ok || subtle.ConstantTimeCompare([]byte(token), admin) != 1 {
				return "", false
			}
			account := r.Header.Get("X-Account-ID")
			if account == "" {
				account = "acct_default"
			}
			return account, true
		},
	})
	if err != nil {
		return nil, err
	}
	root := http.NewServeMux()
	root.Handle("/api/v1/api-keys", keysAPI)
	root.Handle("/api/v1/api-keys/", keysAPI)
	root.Handle("/api/v1/account", keysAPI)
	root.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	root.Handle("/api/v1/webhooks", keysAPI)
	root.Handle("/api/v1/webhooks/", keysAPI)
	if cfg.GitHubScanningKeys != nil {
		keys, err := scanning.ParseGitHubKeys(cfg.GitHubScanningKeys)
		if err != nil {
			return nil, fmt.Errorf("GITHUB_SCANNING_KEYS: %w", err)
		}
		h, err := scanning.New(scanning.Config{Service: svc, GitHubKeys: keys, Facts: facts})
		if err != nil {
			return nil, err
		}
		root.Handle("POST /api/v1/secret-scanning/github", h)
	}
	if cfg.GitLabRevocationToken != "" {
		g, err := scanning.NewGitLab(scanning.GitLabConfig{Service: svc, Token: cfg.GitLabRevocationToken, Facts: facts})
		if err != nil {
			return nil, err
		}
		root.Handle("/api/v1/secret-scanning/gitlab/", g)
	}
	root.Handle("/", mw.Authenticate(resources))
	s.handler = root
	return s, nil
}

// purgeEvery deletes, every interval until the server closes, the keys
// revoked or expired more than retention ago. Several instances may
// purge at once.
func (s *server) purgeEvery(svc *apikey.Service, interval, retention time.Duration) {
	s.background(func(ctx context.Context) {
		for {
			if n, err := svc.Purge(ctx, retention); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "purging old keys: %v (%d purged)\n", err, n)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	})
}

// background runs run in a goroutine until the server closes, which
// cancels its context and waits for it.
func (s *server) background(run func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	s.closers = append(s.closers, func() error { cancel(); <-done; return nil })
}

// redisClient returns the client of REDIS_URL: a Cluster's for a comma
// list of node URLs, a Sentinel-watched master's for a URL with
// master_name (redis://sentinel:26379?master_name=mymaster), one node's
// otherwise. Deadlines bound every call, so that a Redis that hangs
// costs a request the store's and limiter's Timeout, not go-redis's
// retries.
func redisClient(u string) (redis.UniversalClient, error) {
	switch {
	case strings.Contains(u, ","):
		var opts *redis.ClusterOptions
		for seed := range strings.SplitSeq(u, ",") {
			o, err := redis.ParseURL(strings.TrimSpace(seed))
			if err != nil {
				return nil, err
			}
			if opts == nil {
				opts = &redis.ClusterOptions{Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig, ContextTimeoutEnabled: true}
			}
			opts.Addrs = append(opts.Addrs, o.Addr)
		}
		return redis.NewClusterClient(opts), nil
	case strings.Contains(u, "master_name="):
		opts, err := redis.ParseFailoverURL(u)
		if err != nil {
			return nil, err
		}
		opts.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(opts), nil
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

// openSQL opens the SQL store cfg names, SQLite in cfg.DataDir by
// default, and brings its schema up to date. It returns the database
// and its dialect too, for the limiter.
func (s *server) openSQL(cfg serverConfig, meters metric.MeterProvider) (*sqlstore.Store, *sql.DB, sqlstore.Dialect, error) {
	driver, dsn, dialect, err := sqlSource(cfg)
	if err != nil {
		return nil, nil, "", err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, nil, "", err
	}
	s.closers = append(s.closers, db.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sqlstore.Migrate(ctx, db, dialect); err != nil {
		return nil, nil, "", err
	}
	st, err := sqlstore.New(ctx, db, sqlstore.Config{Dialect: dialect, Outbox: true, MeterProvider: meters})
	return st, db, dialect, err
}

// notify records key.expiring (7 days and 1 day ahead) and key.expired
// in store's audit trail, and so its outbox, until the server closes.
func (s *server) notify(store notice.Store, clock func() time.Time) error {
	n, err := notice.New(notice.Config{Store: store, Clock: clock})
	if err != nil {
		return err
	}
	s.background(n.Run)
	return nil
}

// dispatch sends the events of box to the accounts' own webhooks, and
// with WEBHOOK_URL to the operator's, until the server closes.
func (s *server) dispatch(cfg serverConfig, box event.Outbox, facts event.Facts, svc *apikey.Service, meters metric.MeterProvider) (*webhook.Accounts, error) {
	deliveryLog, _ := box.(event.DeliveryLog)
	accounts, err := webhook.NewAccounts(webhook.AccountsConfig{
		Endpoints: func(ctx context.Context, account string) ([]event.Endpoint, error) {
			a, err := svc.Account(ctx, account)
			return a.Webhooks, err
		},
		AllowPrivate: cfg.AllowPrivateWebhooks,
		Facts:        facts,
		Log:          deliveryLog,
		OnGone: func(ctx context.Context, account, endpoint string) {
			_, err := svc.UpdateAccount(ctx, account, func(a *apikey.Account) error {
				for i := range a.Webhooks {
					if a.Webhooks[i].ID == endpoint && a.Webhooks[i].DisabledAt.IsZero() {
						a.Webhooks[i].DisabledAt = cfg.Clock()
					}
				}
				return nil
			})
			if err != nil {
				log.Printf("webhook: turning off endpoint %s, which answered 410: %v", endpoint, err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	sinks := &allSinks{sinks: []dispatch.Sink{accounts}, took: map[took]bool{}}
	if cfg.WebhookURL != "" {
		operator, err := webhook.NewSender(webhook.SenderConfig{URL: cfg.WebhookURL, Secrets: cfg.WebhookSecrets})
		if err != nil {
			return nil, fmt.Errorf("WEBHOOK_URL, WEBHOOK_SECRET: %w", err)
		}
		sinks.sinks = append(sinks.sinks, operator)
	}
	d, err := dispatch.New(dispatch.Config{Outbox: box, Sink: sinks, OnDrop: accounts.GiveUp, MeterProvider: meters})
	if err != nil {
		return nil, err
	}
	s.background(func(ctx context.Context) {
		if err := d.Run(ctx); err != nil {
			log.Printf("webhook: %v", err)
		}
	})
	return accounts, nil
}

// allSinks delivers each event to every sink; when one fails, the
// event goes again to those that have not taken it (as this process
// remembers, for the last 10,000 events; after a restart they may get it
// twice, and drop it by its webhook-id). A sink that is gone (410) is
// dropped, so that the others go on.
type allSinks struct {
	mu    sync.Mutex
	sinks []dispatch.Sink
	took  map[took]bool
}

// took is an event delivered to a sink.
type took struct {
	id   string // the event's message ID
	sink dispatch.Sink
}

func (a *allSinks) Deliver(ctx context.Context, e event.Event) error {
	a.mu.Lock()
	sinks := slices.Clone(a.sinks)
	a.mu.Unlock()
	id := webhook.MessageID(&e)
	var errs []error
	for _, s := range sinks {
		key := took{id, s}
		a.mu.Lock()
		done := a.took[key]
		a.mu.Unlock()
		if done {
			continue
		}
		err := s.Deliver(ctx, e)
		switch {
		case errors.Is(err, dispatch.ErrGone):
			log.Printf("webhook: %v; no more events go there", err)
			a.mu.Lock()
			a.sinks = slices.DeleteFunc(a.sinks, func(o dispatch.Sink) bool { return o == s })
			a.mu.Unlock()
		case err != nil:
			errs = append(errs, err)
		default:
			a.mu.Lock()
			if len(a.took) >= 10_000 {
				clear(a.took)
			}
			a.took[key] = true
			a.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// sqlSource returns the driver, data source and dialect of cfg's SQL
// database.
func sqlSource(cfg serverConfig) (driver, dsn string, d sqlstore.Dialect, err error) {
	u := cfg.DatabaseURL
	switch {
	case u == "":
		if err := privateDir(cfg.DataDir); err != nil {
			return "", "", "", err
		}
		path := filepath.Join(cfg.DataDir, "keys.db")
		if err := privateFile(path); err != nil {
			return "", "", "", err
		}
		return "sqlite", "file:" + path +
			"?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", sqlstore.SQLite, nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "pgx", u, sqlstore.Postgres, nil
	case strings.HasPrefix(u, "mysql://"):
		// go-sql-driver's form: user:password@tcp(host:port)/database?params
		p, err := url.Parse(u)
		if err != nil {
			return "", "", "", fmt.Errorf("DATABASE_URL: %w", err)
		}
		// interpolateParams: one round trip a query instead of three
		// (prepare, execute, close).
		q := p.Query()
		if q.Get("interpolateParams") == "" {
			q.Set("interpolateParams", "true")
		}
		dsn := p.User.String() + "@tcp(" + p.Host + ")" + p.Path + "?" + q.Encode()
		return "mysql", dsn, sqlstore.MySQL, nil
	}
	return "", "", "", errors.New("DATABASE_URL must start with postgres:// or mysql://")
}

// recordings is the demo resource, kept per account: one account's key
// never sees another account's recordings.
type recordings struct {
	mu        sync.Mutex
	next      int
	byAccount map[string]map[string]recording
}

type recording struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Title     string `json:"title"`
}

// route is one demo endpoint: its pattern, handler and guards beyond the
// method's permission.
type route struct {
	pattern string
	handler func(*recordings, http.ResponseWriter, *http.Request)
	project bool // a project-scoped key only for its own project
}

// routes are the demo endpoints; their patterns are also the endpoints a
// key may be restricted to.
var routes = []route{
	{"GET /api/v1/health", (*recordings).health, false},
	{"GET /api/v1/recordings", (*recordings).list, false},
	{"GET /api/v1/recordings/{id}", (*recordings).get, false},
	{"POST /api/v1/recordings", (*recordings).create, false},
	{"PATCH /api/v1/recordings/{id}", (*recordings).update, false},
	{"DELETE /api/v1/recordings/{id}", (*recordings).delete, false},
	{"GET /api/v1/projects/{project_id}/recordings", (*recordings).list, true},
}

func newRecordings() *recordings { return &recordings{byAccount: map[string]map[string]recording{}} }

func (rs *recordings) patterns() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.pattern
	}
	return out
}

// register mounts the demo endpoints. Any valid key may call health; the
// others need the permission of their method (GET read, POST and PATCH
// write, DELETE delete).
func (rs *recordings) register(mux *http.ServeMux, mw *middleware.Middleware) {
	for _, rt := range routes {
		var guards []func(http.Handler) http.Handler
		if rt.pattern != "GET /api/v1/health" {
			guards = append(guards, mw.RequireMethod())
		}
		if rt.project {
			guards = append(guards, mw.RequireProject(func(r *http.Request) string { return r.PathValue("project_id") }))
		}
		h := rt.handler
		mux.Handle(rt.pattern, middleware.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(rs, w, r) }), guards...))
	}
}

func (*recordings) health(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, map[string]string{"status": "ok"})
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// account returns the recordings of the request's account. rs.mu must be
// held.
func (rs *recordings) account(r *http.Request) (apikey.Principal, map[string]recording) {
	p, _ := middleware.PrincipalFrom(r.Context())
	recs := rs.byAccount[p.Owner()]
	if recs == nil {
		recs = map[string]recording{}
		rs.byAccount[p.Owner()] = recs
	}
	return p, recs
}

func (rs *recordings) list(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project_id")
	rs.mu.Lock()
	defer rs.mu.Unlock()
	p, recs := rs.account(r)
	data := []recording{}
	for _, rec := range recs {
		if (project == "" || rec.ProjectID == project) && p.CanAccessProject(rec.ProjectID) {
			data = append(data, rec)
		}
	}
	slices.SortFunc(data, func(a, b recording) int { return strings.Compare(a.ID, b.ID) })
	reply(w, http.StatusOK, map[string]any{"data": data})
}

func (rs *recordings) get(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rec, ok := rs.find(w, r); ok {
		reply(w, http.StatusOK, rec)
	}
}

func (rs *recordings) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
	}
	_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in)
	rs.mu.Lock()
	p, recs := rs.account(r)
	rs.next++
	rec := recording{ID: "rec_" + strconv.Itoa(rs.next), ProjectID: p.ProjectID(), Title: in.Title}
	recs[rec.ID] = rec
	rs.mu.Unlock()
	reply(w, http.StatusCreated, rec)
}

// find returns the recording in the path, if the key's account owns it and
// the key may see its project. rs.mu must be held.
func (rs *recordings) find(w http.ResponseWriter, r *http.Request) (recording, bool) {
	p, recs := rs.account(r)
	rec, ok := recs[r.PathValue("id")]
	if !ok || !p.CanAccessProject(rec.ProjectID) {
		reply(w, http.StatusNotFound, map[string]string{"error": "Recording not found"})
		return recording{}, false
	}
	return rec, true
}

func (rs *recordings) update(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title string `json:"title"`
	}
	_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rec, ok := rs.find(w, r); ok {
		rec.Title = in.Title
		_, recs := rs.account(r)
		recs[rec.ID] = rec
		reply(w, http.StatusOK, rec)
	}
}

func (rs *recordings) delete(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rec, ok := rs.find(w, r); ok {
		_, recs := rs.account(r)
		delete(recs, rec.ID)
		reply(w, http.StatusOK, map[string]any{"success": true})
	}
}
