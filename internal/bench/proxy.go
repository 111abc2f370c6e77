package bench

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/elazarl/goproxy"
)

// proxySource is the address the benchmark's proxy connects to receivers
// from. Receivers count the requests that come from it, which is how the
// benchmark knows the proxy carried them, whether they came as absolute-form
// requests or through a CONNECT tunnel.
const proxySource = "127.0.0.254"

// proxiedHost names the receiver in the proxy row's job URLs. Go's proxy
// selection (golang.org/x/net/http/httpproxy, and net/http's
// ProxyFromEnvironment) never proxies the exact name "localhost" or a
// loopback IP literal, so a job for http://127.0.0.1:port would go direct
// whatever HTTP_PROXY says. Host names are case-insensitive, and that check
// is not: "Localhost" is proxied, and resolves from /etc/hosts to loopback
// like "localhost", with no DNS query leaving the machine.
const proxiedHost = "Localhost"

// forwardProxy is an HTTP forward proxy on loopback (goproxy): plain http
// requests in absolute form and CONNECT tunnels, each connection to a
// receiver made from proxySource.
type forwardProxy struct {
	srv *http.Server
	url string // http://127.0.0.1:<port>
}

// startProxy serves the proxy on a free loopback port until close; it
// keeps up to idlePerHost idle connections to each receiver.
func startProxy(idlePerHost int) (*forwardProxy, error) {
	p := goproxy.NewProxyHttpServer()
	p.Verbose = false
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxySource)}, Timeout: 10 * time.Second}
	// No upstream proxy, whatever the environment says: the benchmark's
	// proxy is the only one on the way. With ConnectDial unset, CONNECT
	// tunnels are dialled through Tr.DialContext too.
	p.Tr = &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: idlePerHost}
	p.ConnectDial, p.ConnectDialWithReq = nil, nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	fp := &forwardProxy{srv: &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}, url: "http://" + ln.Addr().String()}
	// Serve returns only once close is called.
	go func() { _ = fp.srv.Serve(ln) }()
	return fp, nil
}

func (fp *forwardProxy) close() { _ = fp.srv.Close() }
