package engine

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// testDeliverer is a deliverer for receivers on loopback.
func testDeliverer(t *testing.T) *deliverer {
	t.Helper()
	cfg := Default()
	cfg.AllowPrivateNetworks = true
	cfg.RequestTimeout = 5 * time.Second
	cfg, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	d := newDeliverer(cfg)
	t.Cleanup(d.close)
	return d
}

// deliverTo makes one attempt at a signed job to url.
func deliverTo(t *testing.T, d *deliverer, url string) attemptResult {
	t.Helper()
	doc := fmt.Sprintf(`{"url":%q,"webhookId":"w-1","secretHash":%q,"data":{"n":1}}`, url, testSecret)
	tk := newTask(redis.XMessage{ID: "1-0", Values: map[string]any{sendhooks.StreamField: doc}})
	if tk.bad != nil {
		t.Fatal(tk.bad)
	}
	var sig signer
	return d.deliver(context.Background(), tk, &sig)
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// countingServer answers with respond and counts the connections it accepted.
func countingServer(t *testing.T, respond http.HandlerFunc) (srv *httptest.Server, conns *atomic.Int64) {
	t.Helper()
	conns = new(atomic.Int64)
	srv = httptest.NewUnstartedServer(respond)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
}

func TestParseTarget(t *testing.T) {
	cases := []struct {
		url  string
		want target
	}{
		{"http://example.com", target{hostname: "example.com", addr: "example.com:80", key: "http://example.com:80", host: "example.com", uri: "/"}},
		{"https://example.com/hooks?a=1&b=2", target{tls: true, hostname: "example.com", addr: "example.com:443", key: "https://example.com:443", host: "example.com", uri: "/hooks?a=1&b=2"}},
		{"http://127.0.0.1:8080/a%20b/c d", target{hostname: "127.0.0.1", addr: "127.0.0.1:8080", key: "http://127.0.0.1:8080", host: "127.0.0.1:8080", uri: "/a%20b/c%20d"}},
		{"https://[::1]:8443/x", target{tls: true, hostname: "::1", addr: "[::1]:8443", key: "https://[::1]:8443", host: "[::1]:8443", uri: "/x"}},
		{"http://bücher.example:81/", target{hostname: "xn--bcher-kva.example", addr: "xn--bcher-kva.example:81", key: "http://xn--bcher-kva.example:81", host: "xn--bcher-kva.example:81", uri: "/"}},
	}
	for _, c := range cases {
		got, err := parseTarget(c.url)
		if err != nil {
			t.Errorf("parseTarget(%q): %v", c.url, err)
			continue
		}
		if got != c.want {
			t.Errorf("parseTarget(%q)\n got %+v\nwant %+v", c.url, got, c.want)
		}
	}
}

func TestHeaderBreakingValuesMakeABadJob(t *testing.T) {
	for _, field := range []string{"webhookId", "secretHash"} {
		doc := fmt.Sprintf(`{"url":"http://127.0.0.1/","%s":"a\r\nX-Injected: 1","data":{}}`, field)
		tk := newTask(redis.XMessage{ID: "1-0", Values: map[string]any{sendhooks.StreamField: doc}})
		want := fmt.Sprintf(`bad job: the job's %s "a\r\nX-Injected: 1" cannot be sent in an HTTP header: it holds a control character`, field)
		if tk.bad == nil || tk.bad.Error() != want {
			t.Errorf("%s with a line break: bad = %v, want %q", field, tk.bad, want)
		}
	}
}

func TestDeliversOverTLS(t *testing.T) {
	var got struct {
		sync.Mutex
		header http.Header
		body   string
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Lock()
		got.header, got.body = r.Header.Clone(), string(body)
		got.Unlock()
		fmt.Fprint(w, "thanks")
	}))
	defer srv.Close()
	d := testDeliverer(t)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	d.conns.tls.RootCAs = roots

	res := deliverTo(t, d, srv.URL+"/hook")
	if res.err != nil || res.statusCode != 200 || res.response != "thanks" {
		t.Fatalf("attempt over TLS: err %v, status %d, response %q", res.err, res.statusCode, res.response)
	}
	got.Lock()
	defer got.Unlock()
	if got.body != `{"n":1}` {
		t.Errorf("body %q, want the job's data", got.body)
	}
	if err := verifyAsReceiver(testSecret, got.header, []byte(got.body), time.Now()); err != nil {
		t.Errorf("signature over TLS: %v", err)
	}
}

func TestTLSCertificateIsChecked(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	res := deliverTo(t, testDeliverer(t), srv.URL) // the test certificate is not trusted
	var unknown x509.UnknownAuthorityError
	if !errors.As(res.err, &unknown) || res.statusCode != 0 {
		t.Fatalf("attempt to an untrusted certificate: err %v, status %d; want an unknown-authority error", res.err, res.statusCode)
	}
}

func TestKeptConnectionCarriesTheNextRequest(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, strings.Repeat("x", 10<<10)) // longer than the excerpt, shorter than the drain cap
	})
	d := testDeliverer(t)
	for i := range 3 {
		res := deliverTo(t, d, srv.URL)
		if res.err != nil || len(res.response) != responseCap {
			t.Fatalf("attempt %d: err %v, response of %d bytes, want %d", i+1, res.err, len(res.response), responseCap)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 attempts took %d connections, want 1", n)
	}
}

func TestConnectionNotKeptWhenItCannotBeReused(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"answer longer than the drain cap": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, strings.Repeat("x", drainCap+responseCap+1))
		},
		"Connection: close": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		},
	}
	for name, respond := range cases {
		t.Run(name, func(t *testing.T) {
			srv, conns := countingServer(t, respond)
			d := testDeliverer(t)
			for i := range 2 {
				if res := deliverTo(t, d, srv.URL); res.err != nil || res.statusCode != 200 {
					t.Fatalf("attempt %d: err %v, status %d", i+1, res.err, res.statusCode)
				}
			}
			if n := conns.Load(); n != 2 {
				t.Errorf("2 attempts took %d connections, want 2", n)
			}
		})
	}
}

func TestConnectionClosedWhileKeptIsReplacedOnce(t *testing.T) {
	var requests atomic.Int64
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, "ok")
	})
	d := testDeliverer(t)
	if res := deliverTo(t, d, srv.URL); res.err != nil {
		t.Fatal(res.err)
	}
	// The receiver drops the idle connection the deliverer keeps.
	srv.CloseClientConnections()
	res := deliverTo(t, d, srv.URL)
	if res.err != nil || res.statusCode != 200 {
		t.Fatalf("attempt after the receiver closed the kept connection: err %v, status %d", res.err, res.statusCode)
	}
	if r, c := requests.Load(), conns.Load(); r != 2 || c != 2 {
		t.Errorf("receiver saw %d requests on %d connections, want 2 on 2", r, c)
	}
}

// A kept connection that the receiver closes on the next request without
// answering (it dropped it just as the request came) is replaced once: the
// attempt is made again on a new connection and gets its answer there.
func TestKeptConnectionDroppedUnansweredIsRetriedOnANewOne(t *testing.T) {
	var conns, requests atomic.Int64
	addr := serveConns(t, func(c net.Conn) {
		n := conns.Add(1)
		br := bufio.NewReader(c)
		for answered := 0; ; answered++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			requests.Add(1)
			if n == 1 && answered == 1 {
				return // the second request on the first connection: closed unanswered
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	d := testDeliverer(t)
	url := "http://" + addr + "/hook"
	for i := range 2 {
		if res := deliverTo(t, d, url); res.err != nil || res.statusCode != 200 || res.response != "ok" {
			t.Fatalf("attempt %d: status %d, response %q, err %v; want 200 ok", i+1, res.statusCode, res.response, res.err)
		}
	}
	// The second attempt reached the receiver twice: once unanswered on the
	// kept connection, once answered on a new one (the documented duplicate
	// that webhook-id lets a receiver drop).
	if r, c := requests.Load(), conns.Load(); r != 3 || c != 2 {
		t.Errorf("receiver saw %d requests on %d connections, want 3 on 2", r, c)
	}
}

// serveConns listens on loopback and runs serve for each connection on a
// goroutine of its own. When the test ends it stops listening, closes
// the connections still open (a deliverer may keep them) and waits for
// every serve to return. It returns the listener's address.
func serveConns(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	return ln.Addr().String()
}

// rawReceiver answers every request on a connection with answer, bytes as
// given, so that tests can send what net/http's server would not.
func rawReceiver(t *testing.T, answer string) string {
	t.Helper()
	return "http://" + serveConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	}) + "/hook"
}

func TestAnswersReadAsSent(t *testing.T) {
	cases := []struct {
		name, answer string
		status       int
		response     string
	}{
		{"informational answers first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone", 201, "done"},
		{"chunked body", "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad\r\n5\r\n luck\r\n0\r\n\r\n", 500, "bad luck"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := deliverTo(t, testDeliverer(t), rawReceiver(t, c.answer))
			if res.statusCode != c.status || res.response != c.response {
				t.Errorf("status %d, response %q; want %d, %q", res.statusCode, res.response, c.status, c.response)
			}
		})
	}
}

func TestGarbledAnswerFailsTheAttempt(t *testing.T) {
	res := deliverTo(t, testDeliverer(t), rawReceiver(t, "hello\r\n\r\n"))
	const want = `request failed: read the receiver's answer: malformed HTTP response "hello"`
	if res.err == nil || res.err.Error() != want || res.permanent {
		t.Fatalf("garbled answer: err %v (permanent %v), want %q, to be retried", res.err, res.permanent, want)
	}
}

func TestOriginThatIsNotAStreamIDIsIgnored(t *testing.T) {
	for origin, want := range map[string]string{
		"1700000000000-3":          "1700000000000-3",
		"1-0\r\nX-Injected: yes":   "5-0",
		"1-0|2|3|4|{}":             "5-0",
		"not an id":                "5-0",
		"123456789012345678901-0":  "5-0", // more digits than a stream id has
		"1700000000000-3 trailing": "5-0",
	} {
		tk := newTask(redis.XMessage{ID: "5-0", Values: map[string]any{
			sendhooks.StreamField: `{"url":"http://127.0.0.1/","data":{}}`, sendhooks.FieldOrigin: origin}})
		if tk.origin != want || tk.bad != nil {
			t.Errorf("origin %q: task origin %q (bad %v), want %q", origin, tk.origin, tk.bad, want)
		}
	}
}

func TestAttemptCountsOutOfRangeAreRead(t *testing.T) {
	for _, c := range []struct {
		attempt, runStart      any // field values; nil for none
		wantAttempt, wantStart int
	}{
		{"4", "2", 4, 2},
		{nil, nil, 1, 1},
		{"3", nil, 3, 3},
		{"1", "2", 1, 1}, // a schedule cannot start after its attempt
		{"3", "7", 3, 3},
		{"0", "0", 1, 1},
		{"-2", "1", 1, 1},
		{"9223372036854775807", nil, 1, 1}, // would overflow counted on
		{"1000001", "1", 1, 1},
		{"1000000", "999999", 1000000, 999999},
		{"5", "x", 5, 5},
	} {
		values := map[string]any{sendhooks.StreamField: `{"url":"http://127.0.0.1/","data":{}}`}
		if c.attempt != nil {
			values[sendhooks.FieldAttempt] = c.attempt
		}
		if c.runStart != nil {
			values[sendhooks.FieldRunStart] = c.runStart
		}
		tk := newTask(redis.XMessage{ID: "5-0", Values: values})
		if tk.attempt != c.wantAttempt || tk.runStart != c.wantStart || tk.bad != nil {
			t.Errorf("attempt %v, runStart %v: task attempt %d, runStart %d (bad %v); want %d, %d",
				c.attempt, c.runStart, tk.attempt, tk.runStart, tk.bad, c.wantAttempt, c.wantStart)
		}
	}
}

func TestTooManyInformationalAnswersFailTheAttempt(t *testing.T) {
	answer := strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", maxInformational+1) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	res := deliverTo(t, testDeliverer(t), rawReceiver(t, answer))
	const want = "request failed: read the receiver's answer: more than 5 informational answers"
	if res.err == nil || res.err.Error() != want {
		t.Fatalf("six informational answers: err %v, want %q", res.err, want)
	}
}

// A receiver may answer before it has read a large body, and then stop
// reading it: its answer is the attempt's outcome, without waiting for
// the request timeout.
func TestAnswerBeforeTheWholeBodyIsRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		// The head is read, the body is not, and never will be.
		_, _ = io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
		<-done
	}()
	d := testDeliverer(t)
	d.timeout = time.Minute // far beyond the test's wait: only the answer can end the attempt
	body := `{"pad":"` + strings.Repeat("x", 8<<20) + `"}`
	doc := fmt.Sprintf(`{"url":"http://%s/hook","webhookId":"w-big","data":%s}`, ln.Addr(), body)
	tk := newTask(redis.XMessage{ID: "1-0", Values: map[string]any{sendhooks.StreamField: doc}})
	var sig signer
	res := d.deliver(context.Background(), tk, &sig)
	if res.statusCode != http.StatusRequestEntityTooLarge || res.response != "too big!" {
		t.Fatalf("early answer to a large body: status %d, response %q, err %v; want 413 %q", res.statusCode, res.response, res.err, "too big!")
	}
}

// A receiver that sends something on a kept connection while it is idle
// (a 408 before closing it) has that connection replaced: the next
// attempt gets its own answer. A connection idle for checkAfter or longer
// is found out by the peek before it is used; one back in use sooner is
// not peeked, and the 408 read as the answer sends the attempt to a new
// connection.
func TestUnaskedAnswerOnAKeptConnectionIsNotTakenForTheNext(t *testing.T) {
	for name, idle := range map[string]time.Duration{"checked": checkAfter, "unchecked": 0} {
		t.Run(name, func(t *testing.T) {
			sendUnasked := make(chan struct{})
			var conns, requests atomic.Int64
			addr := serveConns(t, func(c net.Conn) {
				n := conns.Add(1)
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				requests.Add(1)
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if n == 1 {
					select {
					case <-sendUnasked:
					case <-t.Context().Done(): // the test ended early
						return
					}
					_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
					_, _ = br.ReadByte() // keep the connection open until the client closes it
				}
			})
			d := testDeliverer(t)
			url := "http://" + addr + "/hook"
			if res := deliverTo(t, d, url); res.statusCode != 200 {
				t.Fatalf("first attempt: status %d, err %v", res.statusCode, res.err)
			}
			kept := func() *conn {
				d.conns.mu.Lock()
				defer d.conns.mu.Unlock()
				for _, list := range d.conns.idle {
					return list[0]
				}
				return nil
			}
			c := kept()
			if c == nil || !idleConnUsable(c.raw) {
				t.Fatal("the first attempt's connection was not kept, or not usable while quiet")
			}
			close(sendUnasked)
			waitFor(t, 10*time.Second, "the unasked answer to arrive", func() bool { return !idleConnUsable(c.raw) })
			d.conns.mu.Lock()
			c.idleSince = time.Now().Add(-idle)
			d.conns.mu.Unlock()
			if res := deliverTo(t, d, url); res.statusCode != 200 || res.response != "ok" {
				t.Fatalf("attempt after an unasked 408: status %d, response %q, err %v; want 200 ok", res.statusCode, res.response, res.err)
			}
			if n, r := conns.Load(), requests.Load(); n != 2 || r != 2 {
				t.Errorf("%d connections, %d requests; want 2 and 2: the one with the unasked answer replaced", n, r)
			}
		})
	}
}

// A 408 that answers a request on a kept connection sends the attempt to
// a new connection once (it is most likely the receiver's idle timeout);
// a 408 there is the attempt's outcome.
func TestRequestTimeoutOnAKeptConnectionIsTriedOnceOnANewOne(t *testing.T) {
	var requests atomic.Int64
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusRequestTimeout)
	})
	d := testDeliverer(t)
	if res := deliverTo(t, d, srv.URL); res.statusCode != http.StatusRequestTimeout {
		t.Fatalf("first attempt, on a new connection: status %d, err %v; want 408", res.statusCode, res.err)
	}
	if res := deliverTo(t, d, srv.URL); res.statusCode != http.StatusRequestTimeout {
		t.Fatalf("second attempt: status %d, err %v; want 408", res.statusCode, res.err)
	}
	if r, c := requests.Load(), conns.Load(); r != 3 || c != 2 {
		t.Errorf("receiver saw %d requests on %d connections, want 3 on 2: the second attempt made again once, on a new connection", r, c)
	}
}

// BenchmarkDeliverAttempt measures one attempt on a kept connection, the
// deliverer alone (no Redis), from as many goroutines as GOMAXPROCS:
// the hot path the engine's workers run.
//
//	go test -run '^$' -bench DeliverAttempt -benchmem ./engine/
func BenchmarkDeliverAttempt(b *testing.B) {
	rc := benchReceiver(b)
	benchAttempts(b, benchDeliverer(b), rc.URL)
}

// benchDeliverer is a deliverer of the default configuration that may
// reach loopback receivers.
func benchDeliverer(b *testing.B) *deliverer {
	cfg := Default()
	cfg.AllowPrivateNetworks = true
	cfg, err := cfg.Resolve()
	if err != nil {
		b.Fatal(err)
	}
	d := newDeliverer(cfg)
	b.Cleanup(d.close)
	return d
}

// benchAttempts times d's attempts of one job to url, from as many
// goroutines as GOMAXPROCS, and reports their CPU time.
func benchAttempts(b *testing.B, d *deliverer, url string) {
	doc := fmt.Sprintf(`{"url":%q,"webhookId":"bench","secretHash":%q,"data":{"order_id":"abc123","amount":"100.00"}}`, url, testSecret)
	tk := newTask(redis.XMessage{ID: "1-0", Values: map[string]any{sendhooks.StreamField: doc}})
	if tk.bad != nil {
		b.Fatal(tk.bad)
	}
	cpu := startCPU(b, nil)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var sig signer
		for pb.Next() {
			if res := d.deliver(context.Background(), tk, &sig); res.err != nil {
				b.Error(res.err)
				return
			}
		}
	})
	b.StopTimer()
	cpu.report()
}
