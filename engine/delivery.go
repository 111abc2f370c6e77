package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	// transport makes the requests directly, without an http.Client: the
	// client's redirect handling (redirects are never followed here) and
	// per-request header copies are work for nothing.
	transport    *http.Transport
	userAgent    string
	secretHeader string // canonical; "" when the older engine's secret header is off
	// timeout bounds each attempt, through the request's context rather
	// than http.Client.Timeout, which starts a goroutine per request.
	timeout time.Duration
}

func newDeliverer(c Config) *deliverer {
	dialer := &Dialer{
		AllowPrivate: c.AllowPrivateNetworks,
		Timeout:      c.RequestTimeout,
		KeepAlive:    30 * time.Second,
	}
	transport := &http.Transport{
		// No proxy from the environment: a proxy would make the dial-time
		// address check meaningless.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// Receivers' answers are read only for a short excerpt: asking for
		// gzip would cost a header and a decompressor for nothing.
		DisableCompression:    true,
		MaxIdleConns:          c.NumWorkers * 2,
		MaxIdleConnsPerHost:   c.MaxPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	d := &deliverer{
		transport: transport,
		userAgent: "Sendhooks/" + sendhooks.Version,
		timeout:   c.RequestTimeout,
	}
	if c.SendSecretHashHeader {
		d.secretHeader = http.CanonicalHeaderKey(c.SecretHashHeaderName)
	}
	return d
}

func (d *deliverer) close() { d.transport.CloseIdleConnections() }

// deliver makes one attempt at POSTing the task's job, signed by sig.
func (d *deliverer) deliver(ctx context.Context, t task, sig *signer) attemptResult {
	res := attemptResult{started: time.Now()}
	attemptCtx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := d.request(attemptCtx, t, res.started, sig)
	if err != nil {
		res.err, res.permanent = err, true
		return res
	}
	resp, err := d.transport.RoundTrip(req)
	res.duration = time.Since(res.started)
	if err != nil {
		res.err = describeTransportError(err)
		res.permanent = IsRefused(err)
		res.aborted = ctx.Err() != nil
		return res
	}
	defer resp.Body.Close()
	res.statusCode = resp.StatusCode
	res.response = readCapped(resp.Body)
	res.duration = time.Since(res.started)
	classify(&res, resp)
	return res
}

// Canonical forms of the header names a request carries: set straight
// into the header map, they skip canonicalising each name on every request.
const (
	canonicalContentType = "Content-Type"
	canonicalUserAgent   = "User-Agent"
	canonicalWebhookID   = "Webhook-Id"
	canonicalTimestamp   = "Webhook-Timestamp"
	canonicalSignature   = "Webhook-Signature"
)

// request builds the signed POST for one attempt.
func (d *deliverer) request(ctx context.Context, t task, now time.Time, sig *signer) (*http.Request, error) {
	body := t.job.Body()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.job.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request for %q: %w", t.job.URL, err)
	}
	id := t.webhookID()
	// One backing array for all the header values.
	v := make([]string, 0, 6)
	add := func(name, value string) {
		v = append(v, value)
		req.Header[name] = v[len(v)-1 : len(v) : len(v)]
	}
	add(canonicalContentType, "application/json")
	add(canonicalUserAgent, d.userAgent)
	add(canonicalWebhookID, id)
	add(canonicalTimestamp, strconv.FormatInt(now.Unix(), 10))
	if t.key != nil {
		add(canonicalSignature, sig.sign(t.key, id, now, body))
	}
	if d.secretHeader != "" && t.job.SecretHash != "" {
		add(d.secretHeader, t.job.SecretHash)
	}
	return req, nil
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
// bounded rest so the connection can go back to the pool.
func readCapped(body io.Reader) string {
	buf := responseBuffers.Get().(*[responseCap]byte)
	defer responseBuffers.Put(buf)
	n, _ := io.ReadFull(body, buf[:])
	_, _ = io.CopyN(io.Discard, body, drainCap)
	s := buf[:n]
	for len(s) > 0 && !utf8.Valid(s) { // cut a rune split by the cap
		s = s[:len(s)-1]
	}
	return string(s)
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
