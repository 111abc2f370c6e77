package web

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Failed sign-ins allowed in a window, per client and from all clients
// together, before the form refuses more: a password cannot be guessed at
// network speed from one address, nor from many. The ceiling for all is a
// hundred clients' worth, so that one client spending its own attempts
// (or a few doing so) locks nobody else out.
const (
	maxFailedLogins    = 10
	maxFailedLoginsAll = 100 * maxFailedLogins
	failedLoginWindow  = time.Minute
	// maxLoginClients bounds the clients tracked at once, so that
	// attempts from ever new addresses cannot grow the monitor's memory.
	maxLoginClients = 10_000
)

// loginThrottle counts failed sign-ins per client and in all, in windows
// of failedLoginWindow that start at a window's first failure.
type loginThrottle struct {
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*failures
	all     failures
}

// failures counts the failed sign-ins of the window that began at since.
type failures struct {
	since time.Time
	n     int
}

func newLoginThrottle(now func() time.Time) *loginThrottle {
	return &loginThrottle{now: now, clients: make(map[string]*failures)}
}

// count is the number of failures in the window open at now.
func (f *failures) count(now time.Time) int {
	if now.Sub(f.since) >= failedLoginWindow {
		return 0
	}
	return f.n
}

// add counts a failure at now, opening a window if none is.
func (f *failures) add(now time.Time) {
	if now.Sub(f.since) >= failedLoginWindow {
		f.since, f.n = now, 0
	}
	f.n++
}

// throttled says whether client, or all clients together, failed too
// often lately to try again.
func (l *loginThrottle) throttled(client string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.all.count(now) >= maxFailedLoginsAll {
		return true
	}
	f := l.clients[client]
	return f != nil && f.count(now) >= maxFailedLogins
}

// fail counts a failed sign-in of client.
func (l *loginThrottle) fail(client string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.add(now)
	f := l.clients[client]
	if f == nil {
		if len(l.clients) >= maxLoginClients {
			l.evictLocked(now)
		}
		f = &failures{}
		l.clients[client] = f
	}
	f.add(now)
}

// evictLocked makes room for a client: it drops the clients whose window
// has closed, or else the one whose window opened first. (Forgetting a
// client lets it try again early; the ceiling for all still holds.)
func (l *loginThrottle) evictLocked(now time.Time) {
	var oldest string
	for k, f := range l.clients {
		if f.count(now) == 0 {
			delete(l.clients, k)
		} else if oldest == "" || f.since.Before(l.clients[oldest].since) {
			oldest = k
		}
	}
	if len(l.clients) >= maxLoginClients {
		delete(l.clients, oldest)
	}
}

// clientOf is the client a request's sign-in attempts are counted
// against: the connection's remote address, not a header a client could
// set (X-Forwarded-For). An IPv6 address counts as its /64, the block one
// client usually holds whole.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail for an IPv6 address
		return p.String()
	}
	return ip.String()
}
