// Package breaker keeps a circuit breaker per server (a Redis node, a SQL
// database), so that a server that is down costs a request microseconds
// instead of a timeout each:
// after [Threshold] faults in a row a node's breaker opens, calls to it
// fail at once with [ErrOpen], and every [Cooldown] one call is let
// through to probe it; the first success closes the breaker again.
//
// Only faults count: the node or the connection to it failing, a
// timeout, or a node that says it cannot serve (CLUSTERDOWN, LOADING,
// MASTERDOWN). A reply the node gave on purpose (a missing key, a script
// error) or a caller that gave up does not.
package breaker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Threshold is how many faults in a row open a node's breaker: one slow
// reply (a fork, a long script) must not cut a whole node off.
const Threshold = 3

// Cooldown is how long an open breaker fails calls before letting one
// through to probe the node: how soon a node that came back serves again.
const Cooldown = 500 * time.Millisecond

// ErrOpen is the error of a call not made because its server failed
// recently.
var ErrOpen = errors.New("the server failed recently; not tried until its next probe")

// Set holds the breakers of a client's nodes, by address ("" for a
// client of one node). The zero value is ready to use; it is safe for
// concurrent use.
type Set struct {
	// Clock returns the current time. Default [time.Now].
	Clock func() time.Time
	nodes sync.Map // string -> *node
}

func (s *Set) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

type node struct {
	faults atomic.Int32
	// until is when an open breaker next lets a call through (Unix
	// nanoseconds); 0 while the breaker is closed.
	until atomic.Int64
}

// Do runs call unless the breaker of the node at addr is open (then it
// returns ErrOpen), and records the outcome. ctx is the caller's context,
// not one derived with the call's own timeout, so that a caller giving
// up is not counted as the node's fault.
func (s *Set) Do(ctx context.Context, addr string, call func() error) error {
	n := s.node(addr)
	if !n.allow(s) {
		return ErrOpen
	}
	err := call()
	n.done(ctx, err, s)
	return err
}

// allow and done read the clock only while a node is failing: a healthy
// call costs no clock read.
func (n *node) allow(s *Set) bool {
	until := n.until.Load()
	if until == 0 {
		return true
	}
	now := s.now().UnixNano()
	// Past the cooldown, the first caller to move the deadline probes;
	// the others keep failing at once until the probe answers.
	return now >= until && n.until.CompareAndSwap(until, now+int64(Cooldown))
}

func (n *node) done(ctx context.Context, err error, s *Set) {
	if err != nil && ctx.Err() != nil {
		return // the caller gave up: that says nothing of the node
	}
	if !Fault(err) {
		if n.faults.Load() != 0 {
			n.faults.Store(0)
		}
		if n.until.Load() != 0 {
			n.until.Store(0)
		}
		return
	}
	if n.faults.Add(1) >= Threshold || n.until.Load() != 0 {
		n.until.Store(s.now().Add(Cooldown).UnixNano())
	}
}

func (s *Set) node(addr string) *node {
	if n, ok := s.nodes.Load(addr); ok {
		return n.(*node)
	}
	n, _ := s.nodes.LoadOrStore(addr, new(node))
	return n.(*node)
}

// Fault reports whether err, from a call whose caller is still waiting,
// says the node or the way to it failed.
func Fault(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.DeadlineExceeded):
		return true // the call's own timeout: the caller is still waiting
	case errors.Is(err, context.Canceled):
		return false
	}
	// Error replies (go-redis's implement RedisError) are deliberate,
	// but for a node that is not serving.
	var reply interface {
		error
		RedisError()
	}
	if errors.As(err, &reply) {
		msg := reply.Error() // the reply's own text, however it was wrapped
		for _, p := range []string{"CLUSTERDOWN", "LOADING", "MASTERDOWN"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true // the connection: refused, reset, closed, pool exhausted
}
