package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrUnsafeURL reports an endpoint URL an account may not register: not
// https, or a host that is or resolves to a loopback, private, link-local
// (cloud metadata at 169.254.169.254 included), shared (100.64.0.0/10),
// unspecified or multicast address.
var ErrUnsafeURL = errors.New("webhook: the URL may not receive events")

// CheckURL reports, with [ErrUnsafeURL], an endpoint URL that an account
// may not register; allowPrivate lifts the rules on scheme and address,
// for local development. It resolves the host within ctx. Deliveries
// check the address again as they connect, so that a name that resolves
// elsewhere later (DNS rebinding) reaches nothing it may not.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: %q is not an absolute http(s) URL without credentials", ErrUnsafeURL, raw)
	}
	if allowPrivate {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: it must be https", ErrUnsafeURL)
	}
	host := u.Hostname()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: %s does not resolve", ErrUnsafeURL, host)
	}
	for _, a := range addrs {
		if !public(a) {
			return fmt.Errorf("%w: %s resolves to %s, which is not a public address", ErrUnsafeURL, host, a)
		}
	}
	return nil
}

// shared is the carrier-grade NAT range, private in practice.
var shared = netip.MustParsePrefix("100.64.0.0/10")

// public reports whether a is an address an endpoint may have.
func public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !shared.Contains(a)
}

// guardedClient returns the client of account endpoints: it connects
// only to public addresses unless allowPrivate, follows no redirect and
// gives a receiver 10 seconds.
func guardedClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		// Checked on the address actually dialled, after resolution.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !public(ap.Addr()) {
				return fmt.Errorf("%w: %s is not a public address", ErrUnsafeURL, address)
			}
			return nil
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialer.DialContext
	transport.Proxy = nil // a proxy would dial for us, past the check
	return &http.Client{
		Transport:     transport,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
