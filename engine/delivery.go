package engine

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/idna"

	"github.com/sendhooks/sendhooks"
)

// Limits on what is kept of a receiver's answer.
const (
	// responseCap is how much of a response body is kept for the status
	// event: enough to read an error message, small enough for every event.
	responseCap = 2 << 10
	// drainCap is how much more is read and thrown away so the connection
	// can be reused; past it the connection is closed instead.
	drainCap = 64 << 10
	// maxRetryAfter bounds how far a receiver's Retry-After can push the next
	// attempt.
	maxRetryAfter = time.Hour
)

// attemptResult is what one HTTP attempt came to.
type attemptResult struct {
	started    time.Time
	duration   time.Duration
	statusCode int
	response   string        // capped response body
	retryAfter time.Duration // from Retry-After on 429/503; 0 if none
	err        error         // nil on success (2xx)
	permanent  bool          // no later attempt can succeed
	aborted    bool          // cut short by shutdown: record nothing
}

// deliverer makes the HTTP attempts.
type deliverer struct {
	conns        *connPool
	proxies      *proxies // nil: every receiver is reached directly
	userAgent    string
	secretHeader string // canonical; "" when the older engine's secret header is off
	timeout      time.Duration
}

func newDeliverer(c Config) *deliverer {
	dialer := &Dialer{
		AllowPrivate: c.AllowPrivateNetworks,
		Timeout:      c.RequestTimeout,
		KeepAlive:    30 * time.Second,
	}
	d := &deliverer{
		// As many idle connections per receiver as requests it may have at
		// once, so that a busy receiver's connections are all kept.
		conns:     newConnPool(dialer, c.NumWorkers*2, cmp.Or(c.MaxPerHost, c.NumWorkers)),
		proxies:   newProxies(httpproxy.FromEnvironment()),
		userAgent: "Sendhooks/" + sendhooks.Version,
		timeout:   c.RequestTimeout,
	}
	if c.SendSecretHashHeader {
		d.secretHeader = http.CanonicalHeaderKey(c.SecretHashHeaderName)
	}
	return d
}

func (d *deliverer) close() { d.conns.closeIdle() }

// target is where a job's requests go, read from its URL.
type target struct {
	tls      bool
	hostname string // the name TLS checks the certificate against
	addr     string // host:port to dial
	key      string // the connection pool's key: scheme and addr
	host     string // the Host header
	uri      string // the request target: path and query
}

// parseTarget reads a job's URL, which the job's validation has already
// found to be an http or https URL with a host.
func parseTarget(rawURL string) (target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return target{}, &sendhooks.BadJobError{Reason: fmt.Sprintf("the url %q does not parse: %v", rawURL, err)}
	}
	t := target{tls: u.Scheme == "https", hostname: u.Hostname(), host: u.Host, uri: u.RequestURI()}
	if zone := strings.IndexByte(t.host, '%'); zone >= 0 && strings.HasPrefix(t.host, "[") {
		// An IPv6 zone ("[fe80::1%eth0]") is for this machine's routing,
		// not for the receiver's Host header.
		t.host = t.host[:zone] + t.host[strings.IndexByte(t.host, ']'):]
	}
	if !isASCII(t.hostname) {
		// An internationalised name travels in its ASCII (punycode) form.
		if t.hostname, err = idna.Lookup.ToASCII(t.hostname); err != nil {
			return target{}, &sendhooks.BadJobError{Reason: fmt.Sprintf("the url %q has a host name that cannot be looked up: %v", rawURL, err)}
		}
		t.host = t.hostname
		if u.Port() != "" {
			t.host = net.JoinHostPort(t.hostname, u.Port())
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if t.tls {
			port = "443"
		}
	}
	t.addr = net.JoinHostPort(t.hostname, port)
	t.key = u.Scheme + "://" + t.addr
	return t, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// longAgo is a deadline in the past, which makes a blocked read or write
// on a connection return at once.
var longAgo = time.Unix(1, 0)

// deliver makes one attempt at POSTing the task's job, signed by sig.
func (d *deliverer) deliver(ctx context.Context, t task, sig *signer) attemptResult {
	res := attemptResult{started: time.Now()}
	deadline := res.started.Add(d.timeout)
	// A kept connection that turns out closed before any answer (the
	// receiver dropped it while it sat idle) is replaced once by a new one:
	// the receiver never saw the request, or saw it without answering,
	// which the webhook-id lets it recognise.
	err := d.exchange(ctx, t, sig, deadline, false, &res)
	if errors.Is(err, errStaleConn) {
		err = d.exchange(ctx, t, sig, deadline, true, &res)
	}
	res.duration = time.Since(res.started)
	if err != nil {
		res.err = describeTransportError(err)
		res.permanent = IsRefused(err)
		res.aborted = ctx.Err() != nil
	}
	return res
}

// errStaleConn reports a kept connection that turned out closed before
// any answer came.
var errStaleConn = errors.New("kept connection closed by the receiver")

// exchange makes the request on a kept connection, or a new one when fresh
// or none is kept, and reads the answer into res. The connection is kept
// again if it can carry another request.
func (d *deliverer) exchange(ctx context.Context, t task, sig *signer, deadline time.Time, fresh bool, res *attemptResult) error {
	key := t.to.key
	var hop *proxyHop
	if d.proxies != nil {
		var err error
		if hop, err = d.proxies.forTarget(t.to); err != nil {
			return err
		}
		if hop != nil {
			key = hop.key + key
		}
	}
	var c *conn
	if !fresh {
		c = d.conns.takeIdle(key)
	}
	if c == nil {
		var err error
		if hop != nil {
			c, err = d.conns.connectVia(ctx, hop, t.to, deadline)
		} else {
			c, err = d.conns.connect(ctx, t.to, deadline)
		}
		if err != nil {
			return err
		}
	}
	if err := c.SetDeadline(deadline); err != nil {
		_ = c.Close()
		return fmt.Errorf("connection to %s: %w", t.to.addr, err)
	}
	// The shutdown deadline cancels ctx: a blocked read or write returns at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(longAgo) })
	defer stop()

	sent := d.send(c, t, sig, res.started)
	// A kept connection's reader holds nothing (put checks), so the limit
	// counts the answer's head from its first byte.
	c.head.left = maxAnswerHead
	_, peekErr := c.br.Peek(1) // the answer has begun, or the connection failed
	writeErr := sent()
	if peekErr != nil {
		_ = c.Close()
		err := cmp.Or(writeErr, peekErr) // a failed write says more
		if c.reused && ctx.Err() == nil && isConnLoss(err) {
			return errStaleConn
		}
		return err
	}
	resp, err := readFinalResponse(c.br)
	if err != nil && c.head.left == 0 {
		// The head was cut off at the limit (whatever error the parser made
		// of that): the connection cannot carry another request.
		_ = c.Close()
		return errAnswerHeadTooLarge
	}
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("read the receiver's answer: %w", err)
	}
	if resp.StatusCode == http.StatusRequestTimeout && c.reused && ctx.Err() == nil {
		// On a kept connection a 408 is most likely the receiver's answer
		// to its own idle timeout, sent before this request came (a
		// connection back in use within checkAfter is not peeked): either
		// way the receiver did not take the request, which is made again on
		// a new connection, as after a close.
		_ = c.Close()
		return errStaleConn
	}
	c.head.left = -1 // the body is bounded by readCapped
	res.statusCode = resp.StatusCode
	var complete bool
	res.response, complete = readCapped(resp.Body)
	stop() // before the connection can go to another worker
	classify(res, resp)
	if writeErr == nil && complete && !resp.Close && resp.StatusCode >= 200 && c.br.Buffered() == 0 && ctx.Err() == nil {
		d.conns.put(c)
	} else {
		_ = c.Close()
	}
	return nil
}

// concurrentWriteMin is the body size from which a request is written by
// a goroutine of its own while the worker waits for the answer: a
// receiver may answer (a 413, a 410) before it has read such a body, and
// then stop reading it. Smaller bodies fit in the socket's buffers and
// their write never waits for the receiver.
const concurrentWriteMin = 64 << 10

// send writes the request on c, at once for a small body, or for a large
// one in a goroutine while the caller waits for the answer. The caller
// calls sent once the answer has begun (or the connection failed): it
// returns the write's error, after cutting the write short if the
// receiver answered before reading the whole body. The receiver's answer,
// if any, is the attempt's outcome either way.
func (d *deliverer) send(c *conn, t task, sig *signer, now time.Time) (sent func() error) {
	if len(t.job.Body()) < concurrentWriteMin {
		d.writeRequest(c.bw, t, sig, now, c.forward)
		err := c.bw.Flush()
		return func() error { return err }
	}
	written := make(chan error, 1)
	go func() {
		d.writeRequest(c.bw, t, sig, now, c.forward)
		written <- c.bw.Flush()
	}()
	return func() error {
		select {
		case err := <-written:
			return err
		default:
			// Answered before the body was all sent: stop sending it.
			_ = c.SetWriteDeadline(longAgo)
			if err := <-written; err != nil {
				return fmt.Errorf("the receiver answered before reading the whole body: %w", err)
			}
			return nil
		}
	}
}

// maxInformational bounds the informational answers (100 Continue, 103
// Early Hints) read before the final one.
const maxInformational = 5

// readFinalResponse reads the answer's head, past informational answers.
// A 101 Switching Protocols is final: the connection cannot be kept after it.
func readFinalResponse(br *bufio.Reader) (*http.Response, error) {
	for range maxInformational + 1 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, err
		}
	}
	return nil, fmt.Errorf("more than %d informational answers", maxInformational)
}

// headerSafe checks that a job's value can be sent as a header value: a
// line break in it would end the header and let the job write its own.
func headerSafe(field, v string) error {
	if !httpguts.ValidHeaderFieldValue(v) {
		return &sendhooks.BadJobError{Reason: fmt.Sprintf("the job's %s %q cannot be sent in an HTTP header: it holds a control character", field, v)}
	}
	return nil
}

// isConnLoss tells whether err is a connection closed or reset by the
// other end.
func isConnLoss(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Canonical forms of the header names a request carries.
const (
	canonicalContentType = "Content-Type"
	canonicalUserAgent   = "User-Agent"
	canonicalWebhookID   = "Webhook-Id"
	canonicalTimestamp   = "Webhook-Timestamp"
	canonicalSignature   = "Webhook-Signature"
)

// writeRequest writes the signed POST for one attempt into w: in absolute
// form, with the proxy's credentials, when forward names the proxy it
// goes to, and in origin form otherwise. Its header values are known to
// be free of line breaks: the engine makes them, or newTask has checked
// them (see headerSafe).
func (d *deliverer) writeRequest(w *bufio.Writer, t task, sig *signer, now time.Time, forward *proxyHop) {
	body, to, id := t.job.Body(), t.to, t.webhookID()
	header := func(name, value string) {
		w.WriteString(name)
		w.WriteString(": ")
		w.WriteString(value)
		w.WriteString("\r\n")
	}
	w.WriteString("POST ")
	if forward != nil {
		w.WriteString("http://")
		w.WriteString(to.host)
	}
	w.WriteString(to.uri)
	w.WriteString(" HTTP/1.1\r\n")
	header("Host", to.host)
	if forward != nil && forward.auth != "" {
		header("Proxy-Authorization", forward.auth)
	}
	header(canonicalUserAgent, d.userAgent)
	header("Content-Length", strconv.Itoa(len(body)))
	header(canonicalContentType, "application/json")
	header(canonicalWebhookID, id)
	header(canonicalTimestamp, strconv.FormatInt(now.Unix(), 10))
	if t.key != nil {
		header(canonicalSignature, sig.sign(t.key, id, now, body))
	}
	if d.secretHeader != "" && t.job.SecretHash != "" {
		header(d.secretHeader, t.job.SecretHash)
	}
	w.WriteString("\r\n")
	w.Write(body)
}

// classify turns an HTTP answer into success, a failure to retry, or a
// failure that ends the job.
func classify(res *attemptResult, resp *http.Response) {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return
	case code >= 300 && code < 400:
		res.err = fmt.Errorf("receiver answered %d %s, a redirect to %q, which is not followed",
			code, http.StatusText(code), resp.Header.Get("Location"))
	case code == http.StatusGone:
		res.err = fmt.Errorf("receiver answered 410 Gone: the endpoint is retired, no further attempts")
		res.permanent = true
	default:
		res.err = fmt.Errorf("receiver answered %d %s", code, http.StatusText(code))
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
}

// parseRetryAfter reads a Retry-After value (seconds or an HTTP date),
// bounded to maxRetryAfter; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// responseBuffers recycles the buffers readCapped reads into.
var responseBuffers = sync.Pool{New: func() any { return new([responseCap]byte) }}

// readCapped keeps the start of a response body as text, then drains a
// bounded rest so the connection can carry another request; complete says
// whether the body was read to its end, without which it cannot.
func readCapped(body io.Reader) (excerpt string, complete bool) {
	buf := responseBuffers.Get().(*[responseCap]byte)
	defer responseBuffers.Put(buf)
	n := 0
	var err error
	for n < len(buf) && err == nil {
		var m int
		m, err = body.Read(buf[n:])
		n += m
	}
	complete = err == io.EOF
	if err == nil {
		var drained int64
		drained, err = io.CopyN(io.Discard, body, drainCap)
		complete = drained < drainCap && err == io.EOF
	}
	s := buf[:n]
	for len(s) > 0 && !utf8.Valid(s) { // cut a rune split by the cap
		s = s[:len(s)-1]
	}
	return string(s), complete
}

// describeTransportError says in plain words why no HTTP answer came.
func describeTransportError(err error) error {
	var netErr net.Error
	switch {
	case IsRefused(err):
		var refused *RefusedAddrError
		errors.As(err, &refused)
		return refused
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("no answer within the request timeout: %w", err)
	default:
		return fmt.Errorf("request failed: %w", err)
	}
}
