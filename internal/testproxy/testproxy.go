// Package testproxy is a TCP proxy on loopback for fault tests: it can cut
// every connection, as a dropped network or a restarted server would, and
// stall them: keep them open and drop every byte, as a NAT that forgot
// them would, or hang: stall every connection, new ones too, as a server
// that stopped answering would.
package testproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards the connections made to Addr to a target.
type Proxy struct {
	Addr string // where clients connect

	t      testing.TB
	target string

	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
	stalled []*atomic.Bool // one per connection pair
	hung    atomic.Bool    // new connections are stalled too
}

// Start returns a Proxy to target, cut when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), t: t, target: target}
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			dead := new(atomic.Bool)
			dead.Store(p.hung.Load())
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.stalled = append(p.stalled, dead)
			p.mu.Unlock()
			go forward(up, c, dead)
			go forward(c, up, dead)
		}
	}()
}

// forward copies src to dst until either closes, dropping what it reads
// once dead is set.
func forward(dst, src net.Conn, dead *atomic.Bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Stall black-holes every open connection without closing it; new
// connections work.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, dead := range p.stalled {
		dead.Store(true)
	}
}

// Hang stalls every connection, and every new one: connections open
// and nothing answers, as from a server that hangs.
func (p *Proxy) Hang() {
	p.hung.Store(true)
	p.Stall()
}

// Cut closes the listener and every connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same address, and ends a hang for new
// connections.
func (p *Proxy) Restore() {
	p.hung.Store(false)
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}
