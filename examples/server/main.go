// Command server is keygate's reference service: the key-management
// endpoints and a demo API of recordings kept per account, with the
// memory store and limiter, or Redis when $REDIS_URL is set.
//
//	go run ./examples/server
//
// Environment: ADDR (default :8080), REDIS_URL, ADMIN_TOKEN (printed when
// generated). Manage keys with "Authorization: Bearer $ADMIN_TOKEN" and
// X-Account-ID; call the resources with a key in Authorization: Bearer or
// X-API-Key.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
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
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	token := os.Getenv("ADMIN_TOKEN")
	if token == "" {
		var b [24]byte
		_, _ = rand.Read(b[:])
		token = "admin_" + hex.EncodeToString(b[:])
		fmt.Printf("ADMIN_TOKEN not set; management endpoints accept: Authorization: Bearer %s\n", token)
	}
	cfg := serverConfig{RedisURL: os.Getenv("REDIS_URL"), Namespace: "keygate-example", AdminToken: token}
	srv, err := newServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	store := "memory store and limiter"
	if cfg.RedisURL != "" {
		store = "Redis store and limiter at " + cfg.RedisURL
	}
	httpServer := newHTTPServer(addr, srv.handler, productionLimits)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = httpServer.Shutdown(shutdown)
	}()
	fmt.Printf("keygate reference service on %s (%s)\n", addr, store)
	if err := httpServer.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
