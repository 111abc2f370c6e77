package engine

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
)

// endlessHeaders is a receiver on loopback that answers every request
// with a status line and then headers without end, until its writes
// fail. closed is done once the engine has closed a connection (a write
// failed), and written counts the bytes it sent.
func endlessHeaders(t *testing.T) (url string, closed <-chan struct{}, written *atomic.Int64) {
	t.Helper()
	var once sync.Once
	done := make(chan struct{})
	written = new(atomic.Int64)
	addr := serveConns(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		line := []byte("X-Pad: " + strings.Repeat("a", 1000) + "\r\n")
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"); err != nil {
			return
		}
		for {
			// A deadline in case the engine neither reads nor closes: the
			// test then fails on its own deadlines.
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			n, err := c.Write(line) // allocates nothing, for the memory test
			written.Add(int64(n))
			if err != nil {
				once.Do(func() { close(done) })
				return
			}
		}
	})
	return "http://" + addr + "/hook", done, written
}

// TestEndlessAnswerHeadersFailTheAttempt sends a job to a receiver that
// streams headers without end, through an engine with one worker: the
// attempt fails at once with the 64 KiB limit named, long before the
// request timeout, the engine closes the connection, and the same worker
// then delivers the next job.
func TestEndlessAnswerHeadersFailTheAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hostile, closed, written := endlessHeaders(t)
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 1, 1
	cfg.RequestTimeout = time.Minute
	cfg.VisibilityTimeout = 2 * time.Minute
	cfg.RetrySchedule = []time.Duration{}
	b.start(t, cfg)

	endless := b.addJob(t, job(hostile, "endless"))
	next := b.addJob(t, job(rc.URL, "next"))
	finals := b.finals(t, 2)

	const want = "request failed: the receiver's answer exceeds the 64 KiB limit on its status line and headers"
	ev := finals[endless]
	if ev.Status != sendhooks.StatusFailed || ev.DeliveryError != want || ev.Attempt != 1 || ev.StatusCode != 0 {
		t.Errorf("endless headers: status %q, attempt %d, code %d, error %q; want failed at attempt 1 with %q",
			ev.Status, ev.Attempt, ev.StatusCode, ev.DeliveryError, want)
	}
	if ev.DurationMs > 5000 {
		t.Errorf("the attempt took %.0f ms; the limit should end it long before the %v timeout", ev.DurationMs, cfg.RequestTimeout)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the engine kept the connection open after the failed attempt (%d bytes sent to it)", written.Load())
	}
	if ev := finals[next]; ev.Status != sendhooks.StatusSuccess || ev.Attempt != 1 {
		t.Errorf("the job after it: status %q at attempt %d, want success at attempt 1", ev.Status, ev.Attempt)
	}
	if got := rc.got(); len(got) != 1 || got[0].header.Get("webhook-id") != "next" {
		t.Errorf("the good receiver got %d requests, want the next job once", len(got))
	}
	b.waitAcked(t)
}

// TestEndlessAnswerHeadersReadBounded makes one attempt at a receiver
// that streams headers without end: it fails with the limit named, long
// before the request timeout; the connection is closed; and the attempt
// allocates a bounded amount, where reading the head to its end would
// take whatever the receiver sends until the timeout.
func TestEndlessAnswerHeadersReadBounded(t *testing.T) {
	url, closed, written := endlessHeaders(t)
	d := testDeliverer(t)
	d.timeout = time.Minute // far beyond the test's wait: only the limit can end the attempt
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := deliverTo(t, d, url)
	runtime.ReadMemStats(&after)

	want := "request failed: " + errAnswerHeadTooLarge.Error()
	if res.err == nil || res.err.Error() != want || res.statusCode != 0 || res.permanent {
		t.Fatalf("endless headers: status %d, err %v (permanent %v); want %q, to be retried", res.statusCode, res.err, res.permanent, want)
	}
	if res.duration > 10*time.Second {
		t.Errorf("the attempt took %v; the limit should end it long before the %v timeout", res.duration, d.timeout)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("the connection was not closed after the failed attempt (%d bytes sent to it)", written.Load())
	}
	if n := len(d.conns.idle); n != 0 {
		t.Errorf("%d receivers with kept connections, want none", n)
	}
	// The head's 64 KiB, parsed into header values, and the connection's
	// buffers: well under 1 MiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("the attempt allocated %d KiB, want under 1 MiB", alloc>>10)
	} else {
		t.Logf("the attempt allocated %d KiB; the receiver had sent %d KiB", alloc>>10, written.Load()>>10)
	}
}

// answerHeadLimit is the documented limit on an answer's head, 64 KiB.
const answerHeadLimit = 64 << 10

// TestLargeAnswerHeadWithinTheLimitIsRead checks the limit's other side:
// an answer whose status line and headers come to just under 64 KiB is
// read, its body kept, and its connection kept for the next request.
func TestLargeAnswerHeadWithinTheLimitIsRead(t *testing.T) {
	head := "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n"
	pad := "X-Pad: "
	const end = "\r\n\r\n"
	pad += strings.Repeat("a", answerHeadLimit-len(head)-len(pad)-len(end))
	answer := head + pad + end + "done"
	if n := len(answer) - len("done"); n != answerHeadLimit {
		t.Fatalf("the head is %d bytes, want exactly %d", n, answerHeadLimit)
	}
	d := testDeliverer(t)
	url := rawReceiver(t, answer)
	for i := range 2 {
		res := deliverTo(t, d, url)
		if res.err != nil || res.statusCode != http.StatusCreated || res.response != "done" {
			t.Fatalf("attempt %d: status %d, response %q, err %v; want 201 done", i+1, res.statusCode, res.response, res.err)
		}
	}
	if n := len(d.conns.idle); n != 1 {
		t.Errorf("%d receivers with kept connections, want 1", n)
	}
}
