package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
)

// oversize is the payload size of the oversized-job tests: 5 MiB.
const oversize = 5 << 20

// bigPayload returns a JSON document of exactly oversize bytes, different
// for each seed, with escapes and non-ASCII text that must reach the
// receiver as they are.
func bigPayload(seed uint64) []byte {
	head := fmt.Sprintf(`{"seed":%d,"text":"caf\u00e9 \"quoted\" \\ é ✓","blob":"`, seed)
	const tail = `"}`
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	rnd := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, 0, oversize)
	b = append(b, head...)
	for len(b) < oversize-len(tail) {
		b = append(b, letters[rnd.IntN(len(letters))])
	}
	return append(b, tail...)
}

// bigJob renders a job whose data is payload.
func bigJob(url, webhookID string, payload []byte) string {
	return fmt.Sprintf(`{"url":%q,"webhookId":%q,"data":%s}`, url, webhookID, payload)
}

// TestOversizeJobDelivered sends one job with a 5 MiB payload through a
// real engine: it is delivered byte for byte in one attempt, and its
// success event carries the whole job document (so the status event is
// over 5 MiB too; see docs/limits.md).
func TestOversizeJobDelivered(t *testing.T) {
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	b.start(t, b.cfg)
	payload := bigPayload(1)
	doc := bigJob(rc.URL, "big-1", payload)
	id := b.addJob(t, doc)

	ev := b.finals(t, 1)[id]
	if ev.Status != sendhooks.StatusSuccess || ev.Attempt != 1 || ev.StatusCode != http.StatusOK || ev.DeliveryError != "" {
		t.Fatalf("final event: status %q, attempt %d, code %d, error %q; want success at attempt 1 with 200",
			ev.Status, ev.Attempt, ev.StatusCode, ev.DeliveryError)
	}
	if ev.PayloadSize != oversize {
		t.Errorf("payloadSize %d, want %d", ev.PayloadSize, oversize)
	}
	if ev.Job != doc {
		t.Errorf("the event's job is %d bytes, not the %d-byte job document as written", len(ev.Job), len(doc))
	}
	got := rc.got()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	if !bytes.Equal(got[0].body, payload) {
		t.Fatalf("receiver got %d bytes that differ from the %d-byte payload", len(got[0].body), len(payload))
	}
	if ct := got[0].header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	raw, err := b.rdb.XRange(context.Background(), b.cfg.StatusStream, "-", "+").Result()
	if err != nil || len(raw) != 1 {
		t.Fatalf("status stream: %d entries, %v; want 1", len(raw), err)
	}
	t.Logf("a %d-byte payload in a %d-byte job makes a %d-byte status event",
		len(payload), len(doc), len(raw[0].Values[sendhooks.StreamField].(string)))
}

// TestOversizeJobsMemoryBounded sends ten 5 MiB jobs through an engine
// with 8 workers and samples the process's heap while they are delivered:
// every payload arrives intact, every job ends in one success event, and
// the heap in use grows by less than 200 MiB over what it was before the
// engine started (a sanity bound, not a benchmark: the engine holds a few
// copies of each in-flight job, no more).
func TestOversizeJobsMemoryBounded(t *testing.T) {
	const jobs = 10
	const heapBound = 200 << 20
	b := setup(t) // 8 workers, 8 per host
	rc := newHashingReceiver(t, jobs)
	want := map[[32]byte]int{}
	for i := range jobs {
		payload := bigPayload(uint64(100 + i))
		want[sha256.Sum256(payload)]++
		b.addJob(t, bigJob(rc.URL, fmt.Sprintf("big-%d", i), payload))
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := sampleHeap(t)
	// Deadlines far above what a loaded machine needs, so that no job is
	// read ahead past its visibility and delivered twice: duplicates are
	// allowed by the guarantees but would muddle this count and the heap.
	cfg := b.cfg
	cfg.RequestTimeout, cfg.VisibilityTimeout = 30*time.Second, 2*time.Minute
	b.start(t, cfg)
	select {
	case <-rc.all:
	case <-time.After(60 * time.Second):
		t.Fatalf("the receiver got %d of %d jobs within a minute", len(rc.sums()), jobs)
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("%d status events", jobs), func() bool {
		n, err := b.rdb.XLen(context.Background(), b.cfg.StatusStream).Result()
		return err == nil && n >= jobs
	})
	grown := int64(peak()) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, peak %d MiB above it while delivering %d jobs of %d MiB with %d workers",
		before.HeapInuse>>20, grown>>20, jobs, oversize>>20, b.cfg.NumWorkers)
	if grown >= heapBound {
		t.Errorf("heap in use grew by %d MiB, want less than %d MiB", grown>>20, heapBound>>20)
	}

	got := rc.sums()
	for _, sum := range got {
		want[sum]--
	}
	for sum, n := range want {
		if n != 0 {
			t.Errorf("payload %x: delivered %d times too few", sum[:8], n)
		}
	}
	if len(got) != jobs {
		t.Errorf("receiver got %d requests, want %d", len(got), jobs)
	}
	for id, ev := range b.finals(t, jobs) {
		if ev.Status != sendhooks.StatusSuccess || ev.Attempt != 1 || ev.PayloadSize != oversize {
			t.Errorf("job %s: status %q at attempt %d, payloadSize %d; want success at attempt 1, %d",
				id, ev.Status, ev.Attempt, ev.PayloadSize, oversize)
		}
	}
}

// sampleHeap samples HeapInuse until the returned function is called,
// which returns the highest value seen.
func sampleHeap(t *testing.T) (stop func() uint64) {
	t.Helper()
	done := make(chan struct{})
	result := make(chan uint64, 1)
	go func() {
		var ms runtime.MemStats
		var peak uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var peak uint64
	stop = func() uint64 {
		once.Do(func() { close(done); peak = <-result })
		return peak
	}
	t.Cleanup(func() { stop() })
	return stop
}

// hashingReceiver is a real HTTP server that keeps only the SHA-256 of
// each body it gets, so that the test's own memory stays flat; all is
// closed once want requests have come.
type hashingReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  [][32]byte
	all  chan struct{}
	want int
}

func newHashingReceiver(t *testing.T, want int) *hashingReceiver {
	t.Helper()
	rc := &hashingReceiver{all: make(chan struct{}), want: want}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var sum [32]byte
		h.Sum(sum[:0])
		w.WriteHeader(http.StatusOK)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.got = append(rc.got, sum)
		if len(rc.got) == rc.want {
			close(rc.all)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *hashingReceiver) sums() [][32]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][32]byte(nil), rc.got...)
}
