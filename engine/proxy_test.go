package engine

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elazarl/goproxy"
	"golang.org/x/net/http/httpproxy"
)

// hostResolver answers every name it knows with one address, and fails
// for any other, so that no test ever looks a name up for real.
type hostResolver map[string]string

func (r hostResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "not a test name", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// loopbackOnly is the proxy's connector: it connects to names ending in
// .test or .example.com, and to loopback literals, all on 127.0.0.1, and
// refuses anything else, so that the proxy never connects out.
func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); (err != nil || !ip.IsLoopback()) &&
		!strings.HasSuffix(host, ".test") && !strings.HasSuffix(host, ".example.com") {
		return nil, fmt.Errorf("test proxy: refusing to connect to %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

// testProxy is a forward proxy on loopback (goproxy) that counts what it
// carries.
type testProxy struct {
	url      string // http://user:secret@127.0.0.1:port
	conns    atomic.Int64
	requests atomic.Int64 // requests forwarded in absolute form
	connects atomic.Int64 // CONNECT tunnels opened

	mu    sync.Mutex
	seen  []string // each request's or CONNECT's target
	auths []string // each one's Proxy-Authorization
}

const (
	proxyUser     = "hooks"
	proxyPassword = "s3cret"
)

func startTestProxy(t testing.TB) *testProxy {
	t.Helper()
	return startTestProxyServer(t, false)
}

// startTestProxyServer starts the proxy, with TLS to the proxy itself
// (an https:// proxy) when overTLS.
func startTestProxyServer(t testing.TB, overTLS bool) *testProxy {
	t.Helper()
	tp := &testProxy{}
	p := goproxy.NewProxyHttpServer()
	p.Logger = log.New(io.Discard, "", 0)
	p.Tr = &http.Transport{DialContext: loopbackOnly, Proxy: nil}
	p.ConnectDial = func(network, addr string) (net.Conn, error) {
		return loopbackOnly(context.Background(), network, addr)
	}
	record := func(target, auth string) {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		tp.seen = append(tp.seen, target)
		tp.auths = append(tp.auths, auth)
	}
	p.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		tp.requests.Add(1)
		record(r.Method+" "+r.URL.String(), r.Header.Get("Proxy-Authorization"))
		return r, nil
	})
	p.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		tp.connects.Add(1)
		record("CONNECT "+host, ctx.Req.Header.Get("Proxy-Authorization"))
		return goproxy.OkConnect, host
	})
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tp.conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if overTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword(proxyUser, proxyPassword)
	tp.url = u.String()
	return tp
}

// saw returns what the proxy carried, in order, and the credentials each
// came with.
func (tp *testProxy) saw() (targets, auths []string) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.seen...), append([]string(nil), tp.auths...)
}

// proxiedDeliverer is a deliverer that reaches receivers through proxyURL
// except for those noProxy lists, and looks names up in names.
func proxiedDeliverer(t *testing.T, proxyURL, noProxy string, names hostResolver) *deliverer {
	t.Helper()
	d := testDeliverer(t)
	d.conns.guard.Resolver = names
	d.proxies = newProxies(&httpproxy.Config{HTTPProxy: proxyURL, HTTPSProxy: proxyURL, NoProxy: noProxy})
	return d
}

// port is the port of a test server's URL.
func port(t testing.TB, srvURL string) string {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

var wantProxyAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(proxyUser+":"+proxyPassword))

// TestProxyCarriesHTTPDeliveries sends three jobs for an http receiver
// through a proxy: each goes to the proxy in absolute form with the
// proxy's credentials, arrives signed, and all three share one
// connection to the proxy.
func TestProxyCarriesHTTPDeliveries(t *testing.T) {
	tp := startTestProxy(t)
	var (
		mu    sync.Mutex
		hosts []string
	)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifyAsReceiver(testSecret, r.Header, body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		fmt.Fprint(w, "via proxy")
	})
	d := proxiedDeliverer(t, tp.url, "", hostResolver{})
	target := "receiver.test:" + port(t, srv.URL)
	for i := range 3 {
		res := deliverTo(t, d, "http://"+target+"/hook?n=1")
		if res.err != nil || res.statusCode != 200 || res.response != "via proxy" {
			t.Fatalf("attempt %d through the proxy: status %d, response %q, err %v", i+1, res.statusCode, res.response, res.err)
		}
	}
	targets, auths := tp.saw()
	wantTarget := "POST http://" + target + "/hook?n=1"
	if len(targets) != 3 || tp.connects.Load() != 0 {
		t.Fatalf("the proxy carried %q (%d CONNECTs), want 3 × %q", targets, tp.connects.Load(), wantTarget)
	}
	for i := range targets {
		if targets[i] != wantTarget || auths[i] != wantProxyAuth {
			t.Errorf("proxied request %d: %q with Proxy-Authorization %q; want %q with %q", i+1, targets[i], auths[i], wantTarget, wantProxyAuth)
		}
	}
	if n := tp.conns.Load(); n != 1 {
		t.Errorf("3 attempts took %d connections to the proxy, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 3 || hosts[0] != target {
		t.Errorf("the receiver saw Host %q, want %q three times", hosts, target)
	}
}

// TestProxyCarriesHTTPSDeliveriesThroughCONNECT sends three jobs for an
// https receiver through the proxy: one CONNECT tunnel with the proxy's
// credentials, TLS to the receiver inside it (its certificate checked
// against the job's host name), and every request on that tunnel.
func TestProxyCarriesHTTPSDeliveriesThroughCONNECT(t *testing.T) {
	tp := startTestProxy(t)
	var tlsRequests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.TLS == nil || verifyAsReceiver(testSecret, r.Header, body, time.Now()) != nil {
			http.Error(w, "not over TLS or not signed", http.StatusBadRequest)
			return
		}
		tlsRequests.Add(1)
		fmt.Fprint(w, "tunnelled")
	}))
	var tlsConns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tlsConns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	d := proxiedDeliverer(t, tp.url, "", hostResolver{})
	trust(d, srv)

	// The test certificate names *.example.com; the proxy connects that
	// name to loopback.
	target := "hooks.example.com:" + port(t, srv.URL)
	for i := range 3 {
		res := deliverTo(t, d, "https://"+target+"/hook")
		if res.err != nil || res.statusCode != 200 || res.response != "tunnelled" {
			t.Fatalf("attempt %d through the proxy: status %d, response %q, err %v", i+1, res.statusCode, res.response, res.err)
		}
	}
	targets, auths := tp.saw()
	if want := "CONNECT " + target; len(targets) != 1 || targets[0] != want || auths[0] != wantProxyAuth {
		t.Errorf("the proxy carried %q with Proxy-Authorization %q; want one %q with %q", targets, auths, want, wantProxyAuth)
	}
	if r := tp.requests.Load(); r != 0 {
		t.Errorf("the proxy saw %d requests in the clear, want none", r)
	}
	if r, c := tlsRequests.Load(), tlsConns.Load(); r != 3 || c != 1 {
		t.Errorf("the receiver saw %d requests on %d TLS connections, want 3 on 1", r, c)
	}
}

// TestHTTPSProxyCarriesDeliveries goes through a proxy reached over TLS
// (an https:// proxy URL, whose certificate is checked): an http job
// travels in absolute form inside that TLS connection, an https job in a
// tunnel with a second TLS session inside it.
func TestHTTPSProxyCarriesDeliveries(t *testing.T) {
	tp := startTestProxyServer(t, true)
	if !strings.HasPrefix(tp.url, "https://") {
		t.Fatalf("proxy at %s, want an https:// URL", tp.url)
	}
	plain, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "plain") })
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure") }))
	t.Cleanup(secure.Close)
	d := proxiedDeliverer(t, tp.url, "", hostResolver{})
	trust(d, secure) // every httptest server, the proxy's too, has the same certificate

	httpTarget := "receiver.test:" + port(t, plain.URL)
	httpsTarget := "hooks.example.com:" + port(t, secure.URL)
	if res := deliverTo(t, d, "http://"+httpTarget+"/hook"); res.err != nil || res.response != "plain" {
		t.Fatalf("http job through an https proxy: status %d, response %q, err %v", res.statusCode, res.response, res.err)
	}
	if res := deliverTo(t, d, "https://"+httpsTarget+"/hook"); res.err != nil || res.response != "secure" {
		t.Fatalf("https job through an https proxy: status %d, response %q, err %v", res.statusCode, res.response, res.err)
	}
	targets, auths := tp.saw()
	want := []string{"POST http://" + httpTarget + "/hook", "CONNECT " + httpsTarget}
	if len(targets) != 2 || targets[0] != want[0] || targets[1] != want[1] || auths[0] != wantProxyAuth || auths[1] != wantProxyAuth {
		t.Errorf("the proxy carried %q with %q, want %q with its credentials", targets, auths, want)
	}
}

// trust makes d trust srv's test certificate.
func trust(d *deliverer, srv *httptest.Server) {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d.conns.tls.RootCAs = roots
}

// TestProxySSRFGuardChecksTheTarget runs the guard with a proxy set: a
// job whose host resolves to a private address, or names one, fails for
// good with the refusal, and nothing reaches the proxy; a host that
// resolves to a public address goes through the proxy, whose own
// loopback address the guard leaves alone.
func TestProxySSRFGuardChecksTheTarget(t *testing.T) {
	tp := startTestProxy(t)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	d := proxiedDeliverer(t, tp.url, "", hostResolver{
		"internal.test":     "10.0.0.1",
		"metadata.test":     "169.254.169.254",
		"rebound.test":      "::ffff:192.168.1.1",
		"public.test":       "93.184.215.14",
		"hooks.example.com": "10.1.2.3",
	})
	d.conns.guard.AllowPrivate = false
	p := port(t, srv.URL)

	refused := []struct{ url, addr string }{
		{"http://internal.test:" + p + "/hook", "10.0.0.1"},
		{"http://metadata.test/latest/meta-data/", "169.254.169.254"},
		{"https://hooks.example.com:" + p + "/hook", "10.1.2.3"},
		{"http://rebound.test:" + p + "/", "::ffff:192.168.1.1"},
		{"https://10.0.0.1/hook", "10.0.0.1"},
		{"http://[fd00::1]:" + p + "/hook", "fd00::1"},
	}
	for _, c := range refused {
		res := deliverTo(t, d, c.url)
		refusal, ok := errors.AsType[*RefusedAddrError](res.err)
		if !ok || refusal.Addr.String() != c.addr || !res.permanent || res.statusCode != 0 {
			t.Errorf("%s: err %v (permanent %v); want the guard's refusal of %s, for good", c.url, res.err, res.permanent, c.addr)
		}
	}
	if n, r, cn := tp.conns.Load(), tp.requests.Load(), tp.connects.Load(); n != 0 || r != 0 || cn != 0 {
		t.Fatalf("the proxy saw %d connections, %d requests and %d CONNECTs for refused targets, want none", n, r, cn)
	}

	res := deliverTo(t, d, "http://public.test:"+p+"/hook")
	if res.err != nil || res.statusCode != 200 {
		t.Fatalf("a public target through a loopback proxy with the guard on: status %d, err %v", res.statusCode, res.err)
	}
	if targets, _ := tp.saw(); len(targets) != 1 || targets[0] != "POST http://public.test:"+p+"/hook" {
		t.Errorf("the proxy carried %q, want the one public target", targets)
	}
}

// TestNoProxyGoesDirect lists one receiver in NO_PROXY: its jobs go
// straight to it and the proxy sees nothing of them, while a receiver not
// listed still goes through the proxy.
func TestNoProxyGoesDirect(t *testing.T) {
	tp := startTestProxy(t)
	var direct, proxied atomic.Int64
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "direct.test:") {
			direct.Add(1)
		} else {
			proxied.Add(1)
		}
	})
	p := port(t, srv.URL)
	d := proxiedDeliverer(t, tp.url, "example.org,.direct.test,direct.test", hostResolver{"direct.test": "127.0.0.1"})

	for i := range 2 {
		if res := deliverTo(t, d, "http://direct.test:"+p+"/hook"); res.err != nil || res.statusCode != 200 {
			t.Fatalf("attempt %d to a NO_PROXY receiver: status %d, err %v", i+1, res.statusCode, res.err)
		}
	}
	if n, r, c := tp.conns.Load(), tp.requests.Load(), tp.connects.Load(); n != 0 || r != 0 || c != 0 {
		t.Fatalf("the proxy saw %d connections, %d requests, %d CONNECTs for a NO_PROXY receiver, want none", n, r, c)
	}
	if res := deliverTo(t, d, "http://other.test:"+p+"/hook"); res.err != nil || res.statusCode != 200 {
		t.Fatalf("attempt to a receiver not in NO_PROXY: status %d, err %v", res.statusCode, res.err)
	}
	if r := tp.requests.Load(); r != 1 {
		t.Errorf("the proxy saw %d requests for the receiver not in NO_PROXY, want 1", r)
	}
	if dn, pn := direct.Load(), proxied.Load(); dn != 2 || pn != 1 {
		t.Errorf("the receiver got %d direct and %d proxied requests, want 2 and 1", dn, pn)
	}
}

// TestProxySettingsReadFromTheEnvironment sets HTTP_PROXY and NO_PROXY as
// an operator would, before the engine starts.
func TestProxySettingsReadFromTheEnvironment(t *testing.T) {
	tp := startTestProxy(t)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	for _, name := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTPS_PROXY", "REQUEST_METHOD"} {
		t.Setenv(name, "")
	}
	t.Setenv("HTTP_PROXY", tp.url)
	t.Setenv("NO_PROXY", "direct.test")
	d := testDeliverer(t)
	d.conns.guard.Resolver = hostResolver{"direct.test": "127.0.0.1"}
	p := port(t, srv.URL)
	for _, host := range []string{"direct.test", "receiver.test"} {
		if res := deliverTo(t, d, "http://"+host+":"+p+"/"); res.err != nil || res.statusCode != 200 {
			t.Fatalf("attempt to %s: status %d, err %v", host, res.statusCode, res.err)
		}
	}
	if targets, _ := tp.saw(); len(targets) != 1 || targets[0] != "POST http://receiver.test:"+p+"/" {
		t.Errorf("the proxy carried %q, want only the receiver outside NO_PROXY", targets)
	}
}

// rawProxy is a proxy on loopback that reads one request head per
// connection and answers it with answer, bytes as given.
func rawProxy(t *testing.T, answer string) string {
	t.Helper()
	return "http://" + proxyUser + ":" + proxyPassword + "@" + serveConns(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, answer)
	})
}

// TestProxyRefusingCONNECTFailsTheAttempt: a proxy that refuses the
// tunnel, or answers with a head past the limit, fails the attempt with
// an error that names the proxy without its password; it is retried.
func TestProxyRefusingCONNECTFailsTheAttempt(t *testing.T) {
	cases := []struct{ name, answer, want string }{
		{"407", "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
			"request failed: the proxy http://hooks:xxxxx@%s refused CONNECT to hooks.example.com:443: 407 Proxy Authentication Required"},
		{"endless head", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 70),
			"request failed: CONNECT to hooks.example.com:443 through the proxy http://hooks:xxxxx@%s: " + errAnswerHeadTooLarge.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proxyURL := rawProxy(t, c.answer)
			d := proxiedDeliverer(t, proxyURL, "", hostResolver{})
			res := deliverTo(t, d, "https://hooks.example.com/hook")
			want := fmt.Sprintf(c.want, strings.TrimPrefix(proxyURL, "http://"+proxyUser+":"+proxyPassword+"@"))
			if res.err == nil || res.err.Error() != want || res.permanent {
				t.Errorf("err %v (permanent %v), want %q, to be retried", res.err, res.permanent, want)
			}
		})
	}
}

func TestUnsupportedProxySchemeIsNamed(t *testing.T) {
	d := proxiedDeliverer(t, "socks5://127.0.0.1:1080", "", hostResolver{})
	res := deliverTo(t, d, "http://receiver.test/hook")
	const want = `request failed: the proxy socks5://127.0.0.1:1080 has scheme "socks5"; only http:// and https:// proxies are supported`
	if res.err == nil || res.err.Error() != want {
		t.Errorf("err %v, want %q", res.err, want)
	}
}

// BenchmarkDeliverAttemptViaProxy is BenchmarkDeliverAttempt for an http
// receiver behind the loopback proxy, whose own work is counted too.
//
//	go test -run '^$' -bench DeliverAttemptViaProxy -benchmem ./engine/
func BenchmarkDeliverAttemptViaProxy(b *testing.B) {
	rc := benchReceiver(b)
	tp := startTestProxy(b)
	d := benchDeliverer(b)
	d.proxies = newProxies(&httpproxy.Config{HTTPProxy: tp.url})
	benchAttempts(b, d, "http://receiver.test:"+port(b, rc.URL)+"/hook")
	if n := tp.requests.Load(); n < int64(b.N) {
		b.Fatalf("the proxy carried %d requests, want %d", n, b.N)
	}
}

// The proxy settings are checked at start: a proxy that cannot be used
// is an error naming its variable, passwords never shown.
func TestProxyEnvironment(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		want    string // the description; "" with wantErr for an error
		wantErr string // a part of the error
	}{
		{env: map[string]string{}, want: ""},
		{env: map[string]string{"NO_PROXY": "localhost"}, want: ""},
		{env: map[string]string{"HTTPS_PROXY": "http://user:s3cret@proxy.corp:3128", "NO_PROXY": "localhost,.internal"},
			want: "HTTPS_PROXY=http://user:xxxxx@proxy.corp:3128 NO_PROXY=localhost,.internal"},
		{env: map[string]string{"http_proxy": "proxy.corp:3128"}, want: "http_proxy=proxy.corp:3128"},
		{env: map[string]string{"http_proxy": "proxy.corp:3128", "HTTP_PROXY": "socks5://other:1080"}, want: "http_proxy=proxy.corp:3128"},
		{env: map[string]string{"HTTP_PROXY": "socks5://user:s3cret@proxy.corp:1080"},
			wantErr: "HTTP_PROXY=socks5://user:xxxxx@proxy.corp:1080: not a usable proxy"},
		{env: map[string]string{"HTTPS_PROXY": "http://u:s3cret@[::1"}, wantErr: "HTTPS_PROXY=http://u:xxxxx@[::1: not a usable proxy"},
		{env: map[string]string{"HTTPS_PROXY": "http://:3128"}, wantErr: "HTTPS_PROXY=http://:3128: not a usable proxy"},
		{env: map[string]string{"https_proxy": "socks5://proxy.corp:1080", "NO_PROXY": "*"},
			wantErr: "https_proxy=socks5://proxy.corp:1080: not a usable proxy"}, // even while NO_PROXY sends everything direct
	} {
		for _, name := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
			t.Setenv(name, c.env[name])
		}
		got, err := ProxyEnvironment()
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: error %v, want one saying %q", c.env, err, c.wantErr)
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("%v: %q, %v; want %q", c.env, got, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the password: %v", c.env, err)
		}
	}
}

func TestHidePassword(t *testing.T) {
	for in, want := range map[string]string{
		"http://proxy:3128":            "http://proxy:3128",
		"http://user@proxy:3128":       "http://user@proxy:3128",
		"http://user:pw@proxy:3128":    "http://user:xxxxx@proxy:3128",
		"user:p@ss@proxy:3128":         "user:xxxxx@proxy:3128",
		"https://u:p@h:1/x?y=@z":       "https://u:xxxxx@h:1/x?y=@z",
		"http://h:1/a@b":               "http://h:1/a@b",
		"http://user:pa/ss@proxy:3128": "http://user:xxxxx@proxy:3128", // does not parse
		"http://user:p#ss@proxy:3128":  "http://user:xxxxx@proxy:3128",
		"http://user:p?ss@proxy:3128":  "http://user:xxxxx@proxy:3128",
		"user:pa/ss@proxy:3128":        "user:xxxxx@proxy:3128",
		"//user:pass@host":             "//user:xxxxx@host",
		"user:pass@proxy:3128/x://y":   "user:xxxxx@proxy:3128/x://y",
	} {
		if got := hidePassword(in); got != want {
			t.Errorf("hidePassword(%q) = %q, want %q", in, got, want)
		}
	}
}
