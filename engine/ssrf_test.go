package engine

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// None of these tests sends a packet anywhere but loopback: dials to other
// addresses go through the Dialer's dial hook, which records them and
// fails instead of connecting.

// TestCheckAddr judges one address from every range the guard knows,
// including the IPv6 forms that embed an IPv4 address.
func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" means allowed
	}{
		// Public unicast: allowed.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:82a::200e", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:0808:0808::1", ""},

		// IPv4 special-purpose ranges.
		{"0.0.0.0", "an unspecified address"},
		{"0.1.2.3", `a "this network" address`},
		{"10.0.0.5", "a private address"},
		{"172.16.0.1", "a private address"},
		{"172.31.255.255", "a private address"},
		{"192.168.1.1", "a private address"},
		{"127.0.0.1", "a loopback address"},
		{"127.255.0.1", "a loopback address"},
		{"169.254.1.1", "a link-local address"},
		{"169.254.169.254", "the cloud metadata address"},
		{"100.100.100.200", "the cloud metadata address"},
		{"100.64.0.1", "a shared (carrier-grade NAT) address"},
		{"100.127.255.254", "a shared (carrier-grade NAT) address"},
		{"192.0.0.8", "an IETF protocol assignment address"},
		{"192.0.2.10", "a documentation address"},
		{"198.51.100.10", "a documentation address"},
		{"203.0.113.10", "a documentation address"},
		{"192.88.99.1", "a 6to4 relay anycast address"},
		{"198.18.0.1", "a benchmarking address"},
		{"198.19.255.1", "a benchmarking address"},
		{"224.0.0.1", "a multicast address"},
		{"239.255.255.250", "a multicast address"},
		{"240.0.0.1", "a reserved address"},
		{"255.255.255.255", "a broadcast address"},

		// Neighbours of refused ranges stay allowed.
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"198.20.0.1", ""},
		{"11.0.0.1", ""},

		// IPv6 ranges.
		{"::", "an unspecified address"},
		{"::1", "a loopback address"},
		{"fe80::1", "a link-local address"},
		{"fe80::1%eth0", "a link-local address"},
		{"fc00::1", "a private address"},
		{"fd12:3456::1", "a private address"},
		{"fd00:ec2::254", "the cloud metadata address"},
		{"ff02::1", "a multicast address"},
		{"2001:db8::1", "a documentation address"},
		{"2001:2::1", "a benchmarking address"},
		{"64:ff9b:1::a00:1", "a local-use NAT64 address"},
		{"::a00:1", "a reserved address"}, // deprecated IPv4-compatible
		{"100::1", "a reserved address"},  // discard-only
		{"fec0::1", "a reserved address"}, // deprecated site-local

		// IPv6 forms embedding an IPv4 address are judged by it.
		{"::ffff:127.0.0.1", "a loopback address (IPv4 127.0.0.1 embedded in an IPv4-mapped address)"},
		{"::ffff:10.0.0.1", "a private address (IPv4 10.0.0.1 embedded in an IPv4-mapped address)"},
		{"::ffff:169.254.169.254", "the cloud metadata address (IPv4 169.254.169.254 embedded in an IPv4-mapped address)"},
		{"64:ff9b::a00:1", "a private address (IPv4 10.0.0.1 embedded in a NAT64 address)"},
		{"64:ff9b::7f00:1", "a loopback address (IPv4 127.0.0.1 embedded in a NAT64 address)"},
		{"2002:0a00:0001::1", "a private address (IPv4 10.0.0.1 embedded in a 6to4 address)"},
		{"2002:a9fe:a9fe::1", "the cloud metadata address (IPv4 169.254.169.254 embedded in a 6to4 address)"},
		// Teredo stores the client address inverted: ^7f000001 = 80fffffe.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "a loopback address (IPv4 127.0.0.1 embedded in a Teredo address)"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			err := CheckAddr(ip)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckAddr(%s) = %v, want allowed", ip, err)
				}
				return
			}
			refused, ok := errors.AsType[*RefusedAddrError](err)
			if !ok {
				t.Fatalf("CheckAddr(%s) = %v, want *RefusedAddrError", ip, err)
			}
			if refused.Reason != tt.reason || refused.Addr != ip {
				t.Fatalf("CheckAddr(%s) = {%s, %q}, want {%s, %q}", ip, refused.Addr, refused.Reason, ip, tt.reason)
			}
		})
	}
}

// TestCheckAddrErrorMessage pins the wording users see in status events.
func TestCheckAddrErrorMessage(t *testing.T) {
	err := CheckAddr(netip.MustParseAddr("10.0.0.5"))
	const want = "destination 10.0.0.5 is a private address; set allowPrivateNetworks to allow it"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if err := CheckAddr(netip.Addr{}); !IsRefused(err) {
		t.Fatalf("zero Addr: err = %v, want refused", err)
	}
}

// fakeResolver answers from a script: call i gets answers[i], and the last
// answer repeats. It records every host asked for.
type fakeResolver struct {
	answers [][]netip.Addr
	err     error

	mu    sync.Mutex
	hosts []string
}

func newFakeResolver(answers ...[]string) *fakeResolver {
	r := &fakeResolver{}
	for _, answer := range answers {
		var addrs []netip.Addr
		for _, a := range answer {
			addrs = append(addrs, netip.MustParseAddr(a))
		}
		r.answers = append(r.answers, addrs)
	}
	return r
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts = append(r.hosts, host)
	if r.err != nil {
		return nil, r.err
	}
	return r.answers[min(len(r.hosts), len(r.answers))-1], nil
}

func (r *fakeResolver) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hosts)
}

// dialRecorder stands in for the real connect: it records each address
// and answers with connect, or with errNotDialed when connect is nil.
type dialRecorder struct {
	connect func(address string) (net.Conn, error)

	mu    sync.Mutex
	addrs []string
}

var errNotDialed = errors.New("test hook: not dialing for real")

func (r *dialRecorder) dial(_ context.Context, _, address string) (net.Conn, error) {
	r.mu.Lock()
	r.addrs = append(r.addrs, address)
	r.mu.Unlock()
	if r.connect == nil {
		return nil, errNotDialed
	}
	return r.connect(address)
}

func (r *dialRecorder) dialed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

// guardedDialer returns a Dialer whose DNS and connects are both fakes.
func guardedDialer(res resolver) (*Dialer, *dialRecorder) {
	rec := &dialRecorder{}
	return &Dialer{Resolver: res, dial: rec.dial}, rec
}

// TestDialRefusedBeforeConnecting covers destinations the guard must
// refuse, proving through the hook that no connection was attempted.
func TestDialRefusedBeforeConnecting(t *testing.T) {
	tests := []struct {
		name     string
		address  string
		answers  []string
		wantAddr string
	}{
		{name: "name resolving to private", address: "internal.example:443", answers: []string{"10.0.0.5"}, wantAddr: "10.0.0.5"},
		{name: "mixed public and private answers", address: "mixed.example:443", answers: []string{"93.184.215.14", "192.168.0.7"}, wantAddr: "192.168.0.7"},
		{name: "name resolving to metadata", address: "metadata.example:80", answers: []string{"169.254.169.254"}, wantAddr: "169.254.169.254"},
		{name: "resolver answers mapped loopback", address: "mapped.example:80", answers: []string{"::ffff:127.0.0.1"}, wantAddr: "::ffff:127.0.0.1"},
		{name: "loopback literal", address: "127.0.0.1:8080", wantAddr: "127.0.0.1"},
		{name: "IPv6 loopback literal", address: "[::1]:8080", wantAddr: "::1"},
		{name: "AWS IPv6 metadata literal", address: "[fd00:ec2::254]:80", wantAddr: "fd00:ec2::254"},
		{name: "zoned link-local literal", address: "[fe80::1%eth0]:80", wantAddr: "fe80::1%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := newFakeResolver(tt.answers)
			d, rec := guardedDialer(res)
			conn, err := d.DialContext(t.Context(), "tcp", tt.address)
			if conn != nil {
				conn.Close()
			}
			if !IsRefused(err) {
				t.Fatalf("DialContext(%s) err = %v, want refused", tt.address, err)
			}
			refused, _ := errors.AsType[*RefusedAddrError](err)
			if got := refused.Addr.String(); got != tt.wantAddr {
				t.Errorf("refused %s, want %s", got, tt.wantAddr)
			}
			if host, _, _ := net.SplitHostPort(tt.address); !strings.Contains(err.Error(), host) {
				t.Errorf("error %q does not name the host %s", err, host)
			}
			if dialed := rec.dialed(); len(dialed) != 0 {
				t.Fatalf("connection attempted to %v after refusal", dialed)
			}
		})
	}
}

// TestDialDNSRebinding scripts a resolver whose second answer turns
// private: the Dialer must ask once and connect to exactly what it checked.
func TestDialDNSRebinding(t *testing.T) {
	res := newFakeResolver([]string{"93.184.215.14"}, []string{"127.0.0.1"})
	d, rec := guardedDialer(res)

	_, err := d.DialContext(t.Context(), "tcp", "rebind.example:443")
	if !errors.Is(err, errNotDialed) {
		t.Fatalf("err = %v, want the hook's error", err)
	}
	if n := res.calls(); n != 1 {
		t.Errorf("resolver asked %d times, want exactly 1", n)
	}
	if got := rec.dialed(); len(got) != 1 || got[0] != "93.184.215.14:443" {
		t.Errorf("dialed %v, want exactly [93.184.215.14:443]", got)
	}
}

// TestDialTriesAddressesInOrder checks that a failing first address does
// not fail the delivery while another checked address connects.
func TestDialTriesAddressesInOrder(t *testing.T) {
	res := newFakeResolver([]string{"93.184.215.14", "::ffff:93.184.215.15", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"})
	d, rec := guardedDialer(res)
	rec.connect = func(address string) (net.Conn, error) {
		if address != "93.184.215.15:443" {
			return nil, errNotDialed
		}
		client, server := net.Pipe()
		server.Close()
		return client, nil
	}

	conn, err := d.DialContext(t.Context(), "tcp", "multi.example:443")
	if err != nil {
		t.Fatalf("DialContext: %v", err)
	}
	conn.Close()
	want := []string{"93.184.215.14:443", "93.184.215.15:443"}
	if got := rec.dialed(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("dialed %v, want %v (in order, mapped form unwrapped, stopping at success)", got, want)
	}
}

// TestDialErrors covers failures that happen before any dial.
func TestDialErrors(t *testing.T) {
	dnsErr := &net.DNSError{Err: "no such host", Name: "nowhere.example", IsNotFound: true}
	tests := []struct {
		name    string
		network string
		address string
		res     *fakeResolver
		want    string
		wantIs  error
	}{
		{name: "resolver error names host", network: "tcp", address: "nowhere.example:443",
			res: &fakeResolver{err: dnsErr}, want: "resolve nowhere.example", wantIs: dnsErr},
		{name: "empty answer", network: "tcp", address: "empty.example:443",
			res: newFakeResolver(nil), want: "resolve empty.example: no addresses"},
		{name: "missing port", network: "tcp", address: "example.com", res: newFakeResolver(), want: "missing port"},
		{name: "missing host", network: "tcp", address: ":443", res: newFakeResolver(), want: "missing host"},
		{name: "unsupported network", network: "unix", address: "sock.example:1", res: newFakeResolver(), want: "unsupported network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, rec := guardedDialer(tt.res)
			_, err := d.DialContext(t.Context(), tt.network, tt.address)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v does not wrap %v", err, tt.wantIs)
			}
			if IsRefused(err) {
				t.Errorf("err = %v is reported as refused", err)
			}
			if dialed := rec.dialed(); len(dialed) != 0 {
				t.Errorf("dialed %v, want nothing", dialed)
			}
		})
	}
}

// TestDialAllowPrivate checks that allowPrivateNetworks turns every
// refusal off, still dialing the resolved literal.
func TestDialAllowPrivate(t *testing.T) {
	res := newFakeResolver([]string{"10.0.0.5"})
	d, rec := guardedDialer(res)
	d.AllowPrivate = true

	_, err := d.DialContext(t.Context(), "tcp4", "internal.example:443")
	if !errors.Is(err, errNotDialed) {
		t.Fatalf("err = %v, want the hook's error", err)
	}
	if got := rec.dialed(); len(got) != 1 || got[0] != "10.0.0.5:443" {
		t.Errorf("dialed %v, want [10.0.0.5:443]", got)
	}
	if d.netDialer().Control != nil {
		t.Error("AllowPrivate dialer still installs the Control check")
	}
}

// TestDialControlRechecks exercises the defence-in-depth check that runs
// on the socket's address just before connect(2).
func TestDialControlRechecks(t *testing.T) {
	control := (&Dialer{}).netDialer().Control
	if control == nil {
		t.Fatal("guarded dialer has no Control check")
	}
	tests := []struct {
		address string
		refused bool
		wantErr bool
	}{
		{"93.184.215.14:443", false, false},
		{"[2606:4700:4700::1111]:443", false, false},
		{"127.0.0.1:80", true, true},
		{"[::ffff:10.0.0.1]:80", true, true},
		{"[fe80::1%eth0]:80", true, true},
		{"not-an-address", false, true}, // fails closed
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := control("tcp", tt.address, nil)
			if (err != nil) != tt.wantErr || IsRefused(err) != tt.refused {
				t.Fatalf("Control(%s) = %v, want err %v refused %v", tt.address, err, tt.wantErr, tt.refused)
			}
		})
	}
}

// TestSSRFGuardHTTPLoopback drives a real http.Client at a real loopback
// server: refused with the guard on, with zero connections reaching the
// server, and delivered with it off.
func TestSSRFGuardHTTPLoopback(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	// The server calls ConnState(StateNew) from its accept loop, in accept
	// order, so a connection made by the refused request would be counted
	// before the allowed one below.
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want an IPv4 loopback literal", srv.URL)
	}

	post := func(allowPrivate bool) (*http.Response, error) {
		d := &Dialer{AllowPrivate: allowPrivate}
		transport := &http.Transport{DialContext: d.DialContext}
		t.Cleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: transport}
		return client.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	}

	resp, err := post(false)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request to 127.0.0.1 succeeded with the guard on")
	}
	if !IsRefused(err) {
		t.Fatalf("err = %v, want refused through *url.Error", err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("server saw %d connections from a refused request", n)
	}

	resp, err = post(true)
	if err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status %d, want 204", resp.StatusCode)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want exactly 1 (the allowed request)", n)
	}
}
