package engine

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// proxies picks the proxy, if any, for each receiver, from HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY as net/http reads them (lower-case names first;
// requests to localhost and loopback addresses always go direct).
type proxies struct {
	proxyFor func(*url.URL) (*url.URL, error)

	mu   sync.Mutex
	hops map[string]*proxyHop // by proxy URL: one or two, from the environment
}

// newProxies returns the proxies cfg names, or nil when it names none, so
// that the direct path costs nothing more.
func newProxies(cfg *httpproxy.Config) *proxies {
	if cfg.HTTPProxy == "" && cfg.HTTPSProxy == "" {
		return nil
	}
	return &proxies{proxyFor: cfg.ProxyFunc(), hops: make(map[string]*proxyHop)}
}

// proxyHop is one proxy requests go through.
type proxyHop struct {
	name     string // the proxy's URL without its password, for errors
	tls      bool   // an https:// proxy: TLS to the proxy itself
	hostname string // the name its certificate is checked against
	addr     string // host:port to dial
	auth     string // the Proxy-Authorization value; "" without userinfo
	key      string // the pool key's prefix
}

// forTarget returns the proxy for t, or nil to go direct.
func (ps *proxies) forTarget(t target) (*proxyHop, error) {
	scheme := "http"
	if t.tls {
		scheme = "https"
	}
	pu, err := ps.proxyFor(&url.URL{Scheme: scheme, Host: t.addr})
	if err != nil || pu == nil {
		return nil, err
	}
	raw := pu.String()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if hop := ps.hops[raw]; hop != nil {
		return hop, nil
	}
	hop, err := newProxyHop(pu)
	if err != nil {
		return nil, err
	}
	ps.hops[raw] = hop
	return hop, nil
}

// newProxyHop reads a proxy URL from the environment.
func newProxyHop(pu *url.URL) (*proxyHop, error) {
	hop := &proxyHop{name: pu.Redacted(), hostname: pu.Hostname()}
	port := pu.Port()
	switch pu.Scheme {
	case "http":
		port = cmp.Or(port, "80")
	case "https":
		hop.tls = true
		port = cmp.Or(port, "443")
	default:
		return nil, fmt.Errorf("the proxy %s has scheme %q; only http:// and https:// proxies are supported", hop.name, pu.Scheme)
	}
	if hop.hostname == "" {
		return nil, fmt.Errorf("the proxy %s has no host", hop.name)
	}
	hop.addr = net.JoinHostPort(hop.hostname, port)
	if u := pu.User; u != nil {
		pass, _ := u.Password()
		hop.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass))
	}
	// The whole URL: two proxies at one address with different
	// credentials keep their connections apart.
	hop.key = pu.String() + " "
	return hop, nil
}

// connectVia opens a connection to t's receiver through the proxy hop,
// all done by deadline. The target is checked by the SSRF guard first,
// before anything reaches the proxy: the proxy resolves the name again
// itself, but a name the guard refuses is never handed to it. The proxy's
// own address is the operator's choice and is not checked.
//
// An http target gets a connection to the proxy on which requests are sent
// in absolute form; an https target gets a CONNECT tunnel through the
// proxy and TLS to the receiver inside it.
func (p *connPool) connectVia(ctx context.Context, hop *proxyHop, t target, deadline time.Time) (*conn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := p.guard.CheckHost(ctx, t.hostname); err != nil {
		return nil, err
	}
	raw, err := p.dialProxy(ctx, "tcp", hop.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the proxy %s: %w", hop.name, err)
	}
	c, err := p.throughProxy(ctx, raw, hop, t, deadline)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}

// throughProxy does connectVia's work on raw, the TCP connection to the
// proxy, which the caller closes on error.
func (p *connPool) throughProxy(ctx context.Context, raw net.Conn, hop *proxyHop, t target, deadline time.Time) (*conn, error) {
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("connection to the proxy %s: %w", hop.name, err)
	}
	// Shutdown cuts the proxy's part short as it does the receiver's.
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(longAgo) })
	defer stop()
	nc := raw
	if hop.tls {
		tc := tls.Client(raw, p.tlsFor(hop.hostname))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake with the proxy %s: %w", hop.name, err)
		}
		nc = tc
	}
	if !t.tls {
		c := newConn(nc, raw, hop.key+t.key)
		c.forward = hop
		return c, nil
	}
	if err := p.tunnel(nc, hop, t); err != nil {
		return nil, err
	}
	tc := tls.Client(nc, p.tlsFor(t.hostname))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake with %s through the proxy %s: %w", t.addr, hop.name, err)
	}
	return newConn(tc, raw, hop.key+t.key), nil
}

// tunnel asks the proxy on nc for a tunnel to t's receiver with CONNECT,
// and reads its answer, whose head is bounded as a receiver's is.
func (p *connPool) tunnel(nc net.Conn, hop *proxyHop, t target) error {
	bw := bufio.NewWriterSize(nc, 512)
	bw.WriteString("CONNECT ")
	bw.WriteString(t.addr)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(t.addr)
	bw.WriteString("\r\n")
	if hop.auth != "" {
		bw.WriteString("Proxy-Authorization: ")
		bw.WriteString(hop.auth)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("CONNECT to %s through the proxy %s: %w", t.addr, hop.name, err)
	}
	head := &headLimit{r: nc, left: maxAnswerHead}
	br := bufio.NewReaderSize(head, 4<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		if head.left == 0 {
			err = errAnswerHeadTooLarge
		}
		return fmt.Errorf("CONNECT to %s through the proxy %s: %w", t.addr, hop.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the proxy %s refused CONNECT to %s: %s", hop.name, t.addr, resp.Status)
	}
	if br.Buffered() > 0 {
		// The receiver speaks first only after the TLS client does.
		return fmt.Errorf("the proxy %s sent data after its answer to CONNECT %s", hop.name, t.addr)
	}
	return nil
}

// ProxyEnvironment checks HTTP_PROXY and HTTPS_PROXY (or their lower-case
// spellings), so that a proxy that cannot be used stops the engine at
// start, naming the variable: net/http's reading of them, which deliveries
// share, ignores a value that does not parse and goes direct. It returns
// the proxy settings for the start-up log, passwords hidden, or "" when no
// proxy is set.
func ProxyEnvironment() (string, error) {
	cfg := httpproxy.FromEnvironment()
	if cfg.HTTPProxy == "" && cfg.HTTPSProxy == "" {
		return "", nil // NO_PROXY alone changes nothing
	}
	var set []string
	for _, v := range []struct {
		names [2]string // lower-case, upper-case
		value string
		proxy bool // a proxy URL, not NO_PROXY's list
	}{
		{[2]string{"http_proxy", "HTTP_PROXY"}, cfg.HTTPProxy, true},
		{[2]string{"https_proxy", "HTTPS_PROXY"}, cfg.HTTPSProxy, true},
		{[2]string{"no_proxy", "NO_PROXY"}, cfg.NoProxy, false},
	} {
		if v.value == "" {
			continue
		}
		name := v.names[0] // the lower-case name wins, as in net/http
		if os.Getenv(name) == "" {
			name = v.names[1]
		}
		shown := hidePassword(v.value)
		set = append(set, name+"="+shown)
		if v.proxy && !usableProxy(v.value) {
			return "", fmt.Errorf("%s=%s: not a usable proxy: want http://host:port or https://host:port", name, shown)
		}
	}
	return strings.Join(set, " "), nil
}

// usableProxy tells whether a proxy variable's value is one deliveries
// can go through. A value without a scheme is read with http:// before
// it, as net/http does; net/http also does so for a value that has a
// scheme but does not parse, which turns "http://[::1" into a proxy at
// "http:80", and that is refused here.
func usableProxy(value string) bool {
	pu, err := url.Parse(value)
	if !strings.Contains(value, "://") {
		pu, err = url.Parse("http://" + value)
	}
	if err != nil {
		return false
	}
	_, err = newProxyHop(pu)
	return err == nil
}

// hidePassword shows a proxy variable's value with the password of its
// user info, if any, as "xxxxx", as url.URL.Redacted does. A value that
// does not parse (a password with an unescaped '/', '?' or '#' is a common
// cause) is masked from the first ':' after the scheme to its last '@':
// a path may go with it, a password may not show.
func hidePassword(proxy string) string {
	if u, err := url.Parse(proxy); err == nil && u.Host != "" && strings.Contains(proxy, "://") {
		return u.Redacted()
	}
	at := strings.LastIndexByte(proxy, '@')
	if at < 0 {
		return proxy // no user info
	}
	start := 0
	if i := strings.Index(proxy[:at], "://"); i >= 0 {
		start = i + len("://")
	}
	colon := strings.IndexByte(proxy[start:at], ':')
	if colon < 0 {
		return proxy // a user name alone
	}
	return proxy[:start+colon+1] + "xxxxx" + proxy[at:]
}
