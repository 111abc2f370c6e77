package soak

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is a real HTTP server on loopback that fails a share of the
// requests with 500, and can be taken down (connections refused and open
// ones cut) and brought back on the same address. It counts each webhook
// id it accepted with a bit set indexed by the job number, so its memory
// stays a bit per job and the process RSS reflects the engine.
type receiver struct {
	addr     string
	failRate float64
	srv      *http.Server

	mu        sync.Mutex
	ln        net.Listener // nil while down
	requests  uint64
	seen      bitset // webhooks answered 200, by job number
	delivered int
	dups      int

	down atomic.Bool
	done chan struct{} // closed when the serve loop for the current listener returns
}

func newReceiver(failRate float64) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{addr: ln.Addr().String(), failRate: failRate}
	rc.srv = &http.Server{Handler: http.HandlerFunc(rc.handle), ReadHeaderTimeout: 5 * time.Second}
	rc.serve(ln)
	return rc, nil
}

// URL is where jobs are sent.
func (rc *receiver) URL() string { return "http://" + rc.addr + "/hook" }

func (rc *receiver) serve(ln net.Listener) {
	rc.ln = ln
	rc.done = make(chan struct{})
	done := rc.done
	go func() {
		defer close(done)
		_ = rc.srv.Serve(ln)
	}()
}

func (rc *receiver) handle(w http.ResponseWriter, r *http.Request) {
	if rc.down.Load() {
		// A keep-alive connection opened before the outage: cut it.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	n, ok := jobNumber(r.Header.Get("webhook-id"))
	rc.mu.Lock()
	rc.requests++
	// Every 1/failRate-th request fails: a fixed share, spread evenly.
	fail := rc.failRate > 0 && rc.requests%uint64(1/rc.failRate) == 0
	if !fail && ok {
		rc.markLocked(n)
	}
	rc.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) markLocked(n int) {
	if rc.seen.add(n) {
		rc.delivered++
	} else {
		rc.dups++
	}
}

// bitset is a set of job numbers, a bit each.
type bitset []uint64

// add puts n in the set and reports whether it was not there yet.
func (b *bitset) add(n int) bool {
	word := n / 64
	for word >= len(*b) {
		*b = append(*b, make([]uint64, max(len(*b), 1024))...)
	}
	bit := uint64(1) << (n % 64)
	if (*b)[word]&bit != 0 {
		return false
	}
	(*b)[word] |= bit
	return true
}

// counts returns the distinct webhooks answered 200 and the repeated ones.
func (rc *receiver) counts() (delivered, dups int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.delivered, rc.dups
}

// setDown takes the receiver down (listener closed: connections refused)
// or brings it back up on the same address.
func (rc *receiver) setDown(down bool) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if down == (rc.ln == nil) {
		return nil
	}
	if down {
		rc.down.Store(true)
		err := rc.ln.Close()
		rc.ln = nil
		return err
	}
	<-rc.done
	ln, err := net.Listen("tcp", rc.addr)
	if err != nil {
		return err
	}
	rc.down.Store(false)
	rc.serve(ln)
	return nil
}

func (rc *receiver) close() {
	_ = rc.srv.Close()
}

// jobNumber reads n from a webhook id "soak-n".
func jobNumber(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, idPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}
