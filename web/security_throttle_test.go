package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// visitorFrom is another browser whose connections come from the loopback
// address ip (any of 127.0.0.0/8 reaches the test server).
func visitorFrom(d *testDashboard, ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		CheckRedirect: d.client.CheckRedirect,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}},
	}
}

// TestSecurityLoginThrottlePerClient has one client address spend its
// failed sign-ins until it is refused even the right password, while
// another address still signs in; a forged X-Forwarded-For does not help
// the first.
func TestSecurityLoginThrottlePerClient(t *testing.T) {
	d := signedInDashboard(t, strings.Repeat("k", 32))
	attacker, user := visitorFrom(d, "127.0.0.2"), visitorFrom(d, "127.0.0.3")
	for i := range maxFailedLogins {
		if status := loginAttempt(t, d, attacker, "admin", fmt.Sprintf("guess %d", i)); status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, status)
		}
	}
	if status := loginAttempt(t, d, attacker, "admin", "correct horse"); status != http.StatusTooManyRequests || signedIn(t, d, attacker) {
		t.Fatalf("the right password from the throttled address: %d, want 429 and no session", status)
	}
	if status := loginAttempt(t, d, user, "admin", "correct horse"); status != http.StatusSeeOther || !signedIn(t, d, user) {
		t.Fatalf("the right password from another address: %d, want 303 and a session", status)
	}

	// The throttled address cannot pass for another through a header.
	forged := visitorFrom(d, "127.0.0.2")
	_, _, body := rawRequest(t, forged, http.MethodGet, d.srv.URL+"/login", nil, nil)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the login form:\n%s", body)
	}
	h := formHeader.Clone()
	h.Set("X-Forwarded-For", "127.0.0.9")
	h.Set("X-Real-Ip", "127.0.0.9")
	form := "csrf=" + m[1] + "&user=admin&password=correct+horse"
	if status, _, _ := rawRequest(t, forged, http.MethodPost, d.srv.URL+"/login", h, strings.NewReader(form)); status != http.StatusTooManyRequests {
		t.Fatalf("the throttled address with X-Forwarded-For: %d, want 429", status)
	}
}

// TestLoginThrottleBounds checks the throttle's ceiling for all clients,
// its memory bound, its window, and that an IPv6 client counts as its /64.
func TestLoginThrottleBounds(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	l := newLoginThrottle(func() time.Time { return now })
	addr := func(i int) string { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() }

	// Many clients failing once each: the ceiling for all holds them.
	for i := range maxFailedLoginsAll - 1 {
		l.fail(addr(i))
	}
	if l.throttled("192.0.2.1") {
		t.Fatalf("throttled after %d failures in all, below the ceiling of %d", maxFailedLoginsAll-1, maxFailedLoginsAll)
	}
	l.fail(addr(maxFailedLoginsAll))
	if !l.throttled("192.0.2.1") {
		t.Fatalf("a new client is not throttled after %d failures in all", maxFailedLoginsAll)
	}
	now = now.Add(failedLoginWindow)
	if l.throttled("192.0.2.1") || l.throttled(addr(1)) {
		t.Fatal("still throttled once the window has passed")
	}

	// Ever new addresses, all within one window, do not grow the table
	// past its bound: the client whose window opened first goes.
	for i := range maxLoginClients + 500 {
		now = now.Add(time.Millisecond)
		l.fail(addr(i))
		if n := len(l.clients); n > maxLoginClients {
			t.Fatalf("%d clients tracked, more than %d", n, maxLoginClients)
		}
	}
	if _, ok := l.clients[addr(499)]; ok {
		t.Error("the oldest clients are still tracked")
	}
	if f := l.clients[addr(maxLoginClients+499)]; f == nil || f.n != 1 {
		t.Errorf("the newest client is tracked as %+v, want 1 failure", f)
	}

	// IPv6: one client's /64 is one client.
	now = now.Add(failedLoginWindow)
	for i := range maxFailedLogins {
		l.fail(clientOf(&http.Request{RemoteAddr: fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1)}))
	}
	same := clientOf(&http.Request{RemoteAddr: "[2001:db8:1:2:ffff::1]:4000"})
	other := clientOf(&http.Request{RemoteAddr: "[2001:db8:1:3::1]:4000"})
	if !l.throttled(same) || l.throttled(other) {
		t.Fatalf("after %d failures in 2001:db8:1:2::/64: %s throttled %t (want true), %s throttled %t (want false)",
			maxFailedLogins, same, l.throttled(same), other, l.throttled(other))
	}
	if got := clientOf(&http.Request{RemoteAddr: "[::ffff:127.0.0.2]:4000"}); got != "127.0.0.2" {
		t.Errorf("an IPv4-mapped address counts as %q, want 127.0.0.2", got)
	}
}
