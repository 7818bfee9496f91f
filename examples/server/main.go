// Command server is keygate's reference service: the key-management
// endpoints and a demo API of recordings kept per account.
//
//	go run ./examples/server
//
// Keys are kept in SQLite in $DATA_DIR (default ./keygate-data) unless
// DATABASE_URL (postgres://... or mysql://...) or REDIS_URL (one node's
// URL, a comma list of a Redis Cluster's nodes, or a Sentinel's URL with
// ?master_name=) names another store, or KEYGATE_STORE=memory keeps them
// in memory. Limits and credits live in the same store, shared by every
// instance and kept across restarts (in process with KEYGATE_STORE=memory);
// LIMITER=local makes them local-first. WEBHOOK_URL and WEBHOOK_SECRET (a
// whsec_ secret; two, space-separated, while it rotates) send every key's
// events to the operator's endpoint as Standard Webhooks messages, from
// the store's outbox: at least once, in order per key, retried for 72
// hours; the audit trail (and so the webhook) also hears of keys 7 days
// and 1 day before they expire, and when they have. GITHUB_SCANNING_KEYS
// (a file of GitHub's secret-scanning public keys, as
// https://api.github.com/meta/public_keys/secret_scanning serves them)
// mounts POST /api/v1/secret-scanning/github, which revokes the keys
// GitHub finds in public code; GITLAB_REVOCATION_TOKEN mounts GitLab's
// Token Revocation API at /api/v1/secret-scanning/gitlab/v1/. Accounts
// register
// webhooks of their own at /api/v1/webhooks (https to public addresses only, unless
// WEBHOOK_ALLOW_PRIVATE=1 for local development). Other environment:
// ADDR (default :8080); ADMIN_TOKEN, which is otherwise generated on
// the first start, kept in the data directory (mode 0600) and printed
// only then; KEY_MAX_LIFETIME, the longest a key may live (a Go
// duration such as 2160h; default none); KEY_RETENTION, how long revoked
// and expired keys are kept before an hourly purge (default 2160h, 90
// days; 0 keeps them). Manage keys with "Authorization: Bearer $ADMIN_TOKEN" and
// X-Account-ID; call the resources with a key in Authorization: Bearer or
// X-API-Key.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// limits are the bounds the service's http.Server puts on each
// connection, so that a slow or hostile client holds one for a bounded
// time and memory.
type limits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

// productionLimits are what a service facing the internet should set:
// net/http's zero values mean no timeout at all.
var productionLimits = limits{
	readHeader:     5 * time.Second,
	read:           30 * time.Second,
	write:          30 * time.Second,
	idle:           2 * time.Minute,
	maxHeaderBytes: 64 << 10,
}

func newHTTPServer(addr string, h http.Handler, l limits) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: l.readHeader,
		ReadTimeout:       l.read,
		WriteTimeout:      l.write,
		IdleTimeout:       l.idle,
		MaxHeaderBytes:    l.maxHeaderBytes,
	}
}

func run() error {
	addr := getenv("ADDR", ":8080")
	cfg := serverConfig{
		Namespace:   "keygate-example",
		RedisURL:    os.Getenv("REDIS_URL"),
		DatabaseURL: os.Getenv("DATABASE_URL"),
		DataDir:     getenv("DATA_DIR", "keygate-data"),
		WebhookURL:  os.Getenv("WEBHOOK_URL"),
	}
	if secret := os.Getenv("WEBHOOK_SECRET"); secret != "" {
		cfg.WebhookSecrets = strings.Fields(secret)
	}
	cfg.AllowPrivateWebhooks = os.Getenv("WEBHOOK_ALLOW_PRIVATE") == "1"
	cfg.GitLabRevocationToken = os.Getenv("GITLAB_REVOCATION_TOKEN")
	if path := os.Getenv("GITHUB_SCANNING_KEYS"); path != "" {
		keys, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("GITHUB_SCANNING_KEYS: %w", err)
		}
		cfg.GitHubScanningKeys = keys
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
		def  string
	}{{"KEY_MAX_LIFETIME", &cfg.MaxLifetime, "0"}, {"KEY_RETENTION", &cfg.Retention, "2160h"}} {
		v, err := time.ParseDuration(getenv(d.name, d.def))
		if err != nil || v < 0 {
			return fmt.Errorf("%s=%q: want a duration such as 2160h (90 days), or 0 for none", d.name, os.Getenv(d.name))
		}
		*d.to = v
	}
	switch mode := os.Getenv("LIMITER"); mode {
	case "", "exact":
	case "local":
		cfg.LocalLimiter = true
	default:
		return fmt.Errorf("LIMITER=%q: want exact (the default) or local", mode)
	}
	switch store := os.Getenv("KEYGATE_STORE"); store {
	case "":
	case "memory":
		cfg.Memory = true
	default:
		return fmt.Errorf("KEYGATE_STORE=%q: the only choice it makes is memory", store)
	}
	token, err := adminToken(cfg)
	if err != nil {
		return err
	}
	cfg.AdminToken = token
	srv, err := newServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	httpServer := newHTTPServer(addr, srv.handler, productionLimits)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = httpServer.Shutdown(shutdown)
	}()
	// Bind first, so that the banner is only printed for a port that is
	// ours.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ADDR=%s: %w", addr, err)
	}
	fmt.Printf("keygate reference service on %s (%s)\n", ln.Addr(), describe(cfg))
	if err := httpServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// privateDir creates dir, or makes it, owner-only (0700): it holds the
// admin token and the keys' database.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("DATA_DIR: %w", err)
	}
	return nil
}

// privateFile creates path, or makes it, owner-only (0600) whatever the
// umask. SQLite gives its -wal and -shm files the database file's mode.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("DATA_DIR must be a directory this user can write: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// describe names the store cfg selects, for the start-up line.
func describe(cfg serverConfig) string {
	switch {
	case cfg.Memory:
		return "keys in memory: they are lost when it stops"
	case cfg.RedisURL != "":
		return "keys and limits in the Redis of REDIS_URL" + localFirst(cfg) // the URL may hold a password
	case cfg.DatabaseURL != "":
		return "keys and limits in the database of DATABASE_URL" + localFirst(cfg)
	}
	path, err := filepath.Abs(filepath.Join(cfg.DataDir, "keys.db"))
	if err != nil {
		path = filepath.Join(cfg.DataDir, "keys.db")
	}
	return "keys and limits in SQLite at " + path + localFirst(cfg)
}

func localFirst(cfg serverConfig) string {
	if cfg.LocalLimiter {
		return ", limits local-first"
	}
	return ""
}

// adminToken returns $ADMIN_TOKEN or, unset, the token kept in the data
// directory, generated on the first start and printed only then (with
// the memory store, a new one each start).
func adminToken(cfg serverConfig) (string, error) {
	if t := os.Getenv("ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	token := "admin_" + hex.EncodeToString(b[:])
	if cfg.Memory {
		fmt.Printf("ADMIN_TOKEN not set; management endpoints accept: Authorization: Bearer %s\n", token)
		return token, nil
	}
	path := filepath.Join(cfg.DataDir, "admin-token")
	if info, err := os.Stat(path); err == nil {
		// Whoever can read the token manages every account's keys.
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			return "", fmt.Errorf("%s is readable by others (mode %#o): run chmod 600 on it, or set ADMIN_TOKEN", path, perm)
		}
		kept, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(kept)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := privateDir(cfg.DataDir); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(path, 0o600); err != nil { // whatever the umask
		return "", err
	}
	fmt.Printf("ADMIN_TOKEN not set; generated one, kept in %s (mode 0600): Authorization: Bearer %s\n", path, token)
	return token, nil
}
