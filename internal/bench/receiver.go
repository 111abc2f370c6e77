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
// 200 after its delay, counts requests, and notes when each latency job
// arrived.
type receiver struct {
	srv      *http.Server
	url      string
	delay    time.Duration
	requests atomic.Int64
	arrivals []atomic.Int64 // latency job n -> arrival, Unix nanoseconds
}

// startReceiver serves on a free loopback port until close. arrivals is
// how many latency jobs it can note.
func startReceiver(delay time.Duration, arrivals int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	rc := &receiver{delay: delay, url: "http://" + ln.Addr().String() + "/hook",
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
	rc.requests.Add(1)
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) close() { _ = rc.srv.Close() }
