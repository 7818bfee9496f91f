package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/middleware"
	"github.com/keygate/keygate/ratelimit"
	"github.com/keygate/keygate/ratelimit/redislimit"
	"github.com/keygate/keygate/store/cachestore"
	"github.com/keygate/keygate/store/memstore"
	"github.com/keygate/keygate/store/redisstore"
)

// serverConfig is what main reads from the environment; tests set it
// directly.
type serverConfig struct {
	RedisURL   string // "" for the memory store and limiter
	Namespace  string // Redis key namespace
	AdminToken string // bearer token of the management endpoints
	Clock      func() time.Time
}

// server is the reference service: DESIGN.md's management endpoints and
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
	// Both stores keep usage as well as keys.
	var store interface {
		apikey.Store
		apikey.UsageStore
	} = memstore.New()
	var limiter ratelimit.Limiter
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		client := redis.NewClient(opts)
		s.closers = append(s.closers, client.Close)
		rs, err := redisstore.New(client, redisstore.Config{Namespace: cfg.Namespace})
		if err != nil {
			return nil, err
		}
		cache, err := cachestore.New(rs, cachestore.Config{Clock: cfg.Clock})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, cache.Close)
		store = cache
		limiter, err = redislimit.New(client, redislimit.Config{Prefix: cfg.Namespace + ":rl:"})
		if err != nil {
			return nil, err
		}
	} else {
		mem := ratelimit.NewMemory(ratelimit.MemoryConfig{Clock: cfg.Clock})
		s.closers = append(s.closers, mem.Close)
		limiter = mem
	}
	svc, err := apikey.New(store, apikey.Config{Clock: cfg.Clock, Plans: []string{"free", "starter", "business"}})
	if err != nil {
		return nil, err
	}
	usage, err := apikey.NewRecorder(store, apikey.RecorderConfig{FlushInterval: time.Second})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { return usage.Close(context.Background()) })

	resources := http.NewServeMux()
	mw, err := middleware.New(middleware.Config{
		Verifier: svc,
		Limiter:  limiter,
		Usage:    usage,
		Routes:   resources,
		HideKey:  true,
		Clock:    cfg.Clock,
	})
	if err != nil {
		return nil, err
	}
	registerResources(resources, mw)

	admin := []byte(cfg.AdminToken)
	mgmt, err := middleware.NewManagement(middleware.ManagementConfig{
		Service: svc,
		Usage:   usage,
		Clock:   cfg.Clock,
		// Stands in for the host's own login: a static admin token, and
		// X-Account-ID naming the account being managed.
		Authenticate: func(r *http.Request) (string, bool) {
			scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), admin) != 1 {
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
	root.Handle("/api/v1/api-keys", mgmt)
	root.Handle("/api/v1/api-keys/", mgmt)
	root.Handle("/", mw.Authenticate(resources))
	s.handler = root
	return s, nil
}

// recordings is the demo resource: a small in-memory collection.
type recordings struct {
	mu   sync.Mutex
	next int
	byID map[string]recording
}

type recording struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Title     string `json:"title"`
}

func registerResources(mux *http.ServeMux, mw *middleware.Middleware) {
	recs := &recordings{byID: map[string]recording{}}
	method := mw.RequireMethod()
	route := func(pattern string, h http.HandlerFunc, guards ...func(http.Handler) http.Handler) {
		mux.Handle(pattern, middleware.Chain(h, guards...))
	}
	route("GET /api/v1/health", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	route("GET /api/v1/recordings", recs.list, method)
	route("GET /api/v1/recordings/{id}", recs.get, method)
	route("POST /api/v1/recordings", recs.create, method)
	route("PATCH /api/v1/recordings/{id}", recs.update, method)
	route("DELETE /api/v1/recordings/{id}", recs.delete, method)
	route("GET /api/v1/projects/{project_id}/recordings", recs.list, method,
		mw.RequireProject(func(r *http.Request) string { return r.PathValue("project_id") }))
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (rs *recordings) list(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	project := r.PathValue("project_id")
	rs.mu.Lock()
	defer rs.mu.Unlock()
	data := []recording{}
	for _, rec := range rs.byID {
		if (project == "" || rec.ProjectID == project) && p.CanAccessProject(rec.ProjectID) {
			data = append(data, rec)
		}
	}
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
	p, _ := middleware.PrincipalFrom(r.Context())
	var in struct {
		Title string `json:"title"`
	}
	_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in)
	rs.mu.Lock()
	rs.next++
	rec := recording{ID: "rec_" + strconv.Itoa(rs.next), ProjectID: p.ProjectID(), Title: in.Title}
	rs.byID[rec.ID] = rec
	rs.mu.Unlock()
	reply(w, http.StatusCreated, rec)
}

// find returns the recording in the path, if the key may see it. rs.mu
// must be held.
func (rs *recordings) find(w http.ResponseWriter, r *http.Request) (recording, bool) {
	p, _ := middleware.PrincipalFrom(r.Context())
	rec, ok := rs.byID[r.PathValue("id")]
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
		rs.byID[rec.ID] = rec
		reply(w, http.StatusOK, rec)
	}
}

func (rs *recordings) delete(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rec, ok := rs.find(w, r); ok {
		delete(rs.byID, rec.ID)
		reply(w, http.StatusOK, map[string]any{"success": true})
	}
}
