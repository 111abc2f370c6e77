package bench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// latencyPrefix starts the webhook ids of the latency run's jobs; the
// number after it indexes the job's send time.
const latencyPrefix = "lat-"

// receiver is a webhook receiver on loopback: it reads every body, answers
// 200 after its delay, counts requests (and those the benchmark's proxy
// carried), and notes when each latency job arrived.
type receiver struct {
	srv      *http.Server
	url      string // http://<ip>:<port>/hook
	port     string
	delay    time.Duration
	requests atomic.Int64
	proxied  atomic.Int64   // requests that came from proxySource: the proxy carried them
	arrivals []atomic.Int64 // latency job n -> arrival, Unix nanoseconds
}

// startReceiver serves on a free port of ip, a loopback address, until
// close. arrivals is how many latency jobs it can note.
func startReceiver(ip string, delay time.Duration, arrivals int) (*receiver, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, fmt.Errorf("receiver on %s: %w", ip, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	rc := &receiver{delay: delay, port: port, url: "http://" + ln.Addr().String() + "/hook",
		arrivals: make([]atomic.Int64, arrivals)}
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	// Serve returns only once close is called.
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if rest, ok := strings.CutPrefix(r.Header.Get("webhook-id"), latencyPrefix); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n < len(rc.arrivals) {
			rc.arrivals[n].CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	if rc.delay > 0 {
		select {
		case <-time.After(rc.delay):
		case <-r.Context().Done():
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && host == proxySource {
		rc.proxied.Add(1)
	}
	rc.requests.Add(1)
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) close() { _ = rc.srv.Close() }

// receiverHosts is a set of receivers, one per loopback address, each a
// receiver host of its own.
type receiverHosts []*receiver

// startReceivers starts n receivers on 127.0.0.1 to 127.0.0.n: Linux
// answers on the whole of 127.0.0.0/8, so each is a host of its own, by
// name and by address, without leaving loopback.
func startReceivers(n int) (receiverHosts, error) {
	if n < 1 || n > 200 {
		return nil, fmt.Errorf("%d receiver hosts: want 1 to 200", n)
	}
	var rs receiverHosts
	for i := 1; i <= n; i++ {
		rc, err := startReceiver("127.0.0."+strconv.Itoa(i), 0, 0)
		if err != nil {
			rs.close()
			return nil, err
		}
		rs = append(rs, rc)
	}
	return rs, nil
}

func (rs receiverHosts) urls() []string {
	u := make([]string, len(rs))
	for i, rc := range rs {
		u[i] = rc.url
	}
	return u
}

func (rs receiverHosts) close() {
	for _, rc := range rs {
		rc.close()
	}
}
