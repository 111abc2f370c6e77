package engine

import (
	"context"
	"slices"
	"testing"
	"time"
)

// fakeClock is a hand-moved clock for the limiter's decisions.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(limit int) (*hostLimiter, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newHostLimiter(limit)
	l.now = clock.now
	return l, clock
}

func TestHostLimiterBoundsConcurrentRequests(t *testing.T) {
	l, _ := newTestLimiter(2)
	ctx := context.Background()
	if !l.acquire(ctx, "a", 0) || !l.acquire(ctx, "a", 0) {
		t.Fatal("the first two requests to a host must get slots")
	}
	if l.acquire(ctx, "a", 0) {
		t.Fatal("a third request got a slot at a host limited to 2")
	}
	if !l.acquire(ctx, "b", 0) {
		t.Fatal("another host must not share a's slots")
	}
	l.release("a", time.Millisecond)
	if !l.acquire(ctx, "a", 0) {
		t.Fatal("a released slot must be taken again")
	}
	l.release("a", time.Millisecond)
	l.release("a", time.Millisecond)
	l.release("b", time.Millisecond)
	if n := len(l.hosts); n != 0 {
		t.Errorf("%d host entries left after every slot was given back", n)
	}
}

// A worker waits at a full host only when a slot is expected within a
// tenth of the wait; otherwise it is better used for another receiver's job.
func TestHostLimiterWaitsOnlyForASlotExpectedSoon(t *testing.T) {
	l, clock := newTestLimiter(2)
	ctx := context.Background()
	const wait = time.Minute // worth waiting for a slot expected within 6 s
	acquireAt := func(host string) chan bool {
		done := make(chan bool, 1)
		go func() { done <- l.acquire(ctx, host, wait) }()
		return done
	}
	fill := func(host string, took time.Duration) {
		// Both slots taken; when took > 0, one given back after took and
		// taken again, so that the host's time per request is known.
		l.acquire(ctx, host, wait)
		l.acquire(ctx, host, wait)
		if took > 0 {
			l.release(host, took)
			l.acquire(ctx, host, wait)
		}
	}

	// 5 ms a request over 2 slots: a slot is expected in 2.5 ms.
	fill("fast", 5*time.Millisecond)
	done := acquireAt("fast")
	waitFor(t, 10*time.Second, "a worker waiting at the fast host", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.hosts["fast"].waiting == 1
	})
	l.release("fast", 5*time.Millisecond)
	if !<-done {
		t.Fatal("the waiting worker did not get the slot given back")
	}

	// 20 s a request, known from one that ended even though a slot came
	// free just now, or from those that have not ended after 20 s: a slot
	// is expected in 10 s, no wait.
	noWait := func(host string) {
		t.Helper()
		select {
		case got := <-acquireAt(host):
			if got {
				t.Fatalf("%s: got a slot that is still held", host)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: a worker waited for a slot expected in 10 s", host)
		}
	}
	fill("slow", 20*time.Second)
	noWait("slow")
	fill("new", 0)
	clock.advance(20 * time.Second)
	noWait("new")
}

func TestHostLimiterSchedulesPutBackJobsAtTheHostsPace(t *testing.T) {
	l, clock := newTestLimiter(4)
	start := clock.now()
	// Before any request has ended: half a second, doubling.
	for deferrals, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		got := l.schedule("h", deferrals).Sub(start)
		if got < want*9/10 || got > want*11/10 {
			t.Errorf("deferral %d before the host's pace is known: due in %v, want %v ±10%%", deferrals, got, want)
		}
	}

	// The host takes 2s a request over 4 slots: one job every 500ms.
	l2, clock2 := newTestLimiter(4)
	ctx := context.Background()
	l2.acquire(ctx, "h", 0)
	l2.acquire(ctx, "h", 0) // still in flight when jobs are put back
	l2.release("h", 2*time.Second)
	start = clock2.now()
	wantPacedAt500ms(t, l2, start)
	// Never further ahead than maxDeferDelay.
	for range 1000 {
		if d := l2.schedule("h", 0).Sub(start); d > maxDeferDelay {
			t.Fatalf("a job put back %v ahead, more than %v", d, maxDeferDelay)
		}
	}
	// The entry outlives its last user while jobs are scheduled for it,
	// and goes once they are due.
	l2.release("h", 2*time.Second)
	if _, ok := l2.hosts["h"]; !ok {
		t.Fatal("the host's entry was dropped while jobs are scheduled for it")
	}
	clock2.advance(maxDeferDelay + time.Minute)
	l2.schedule("other", 0)
	if _, ok := l2.hosts["h"]; ok {
		t.Error("the host's entry is kept after every scheduled job fell due")
	}
}

// A host whose first requests have not ended after 2 s takes at least 2 s
// a request: jobs put back meanwhile are spaced as if it were known.
func TestHostLimiterPacesAHostWhoseRequestsHaveNotEnded(t *testing.T) {
	l, clock := newTestLimiter(4)
	ctx := context.Background()
	for range 4 {
		l.acquire(ctx, "h", 0)
	}
	clock.advance(2 * time.Second)
	wantPacedAt500ms(t, l, clock.now())
}

// wantPacedAt500ms puts three jobs back for host "h" and checks that they
// are due 100 ms after start (the least wait), then 500 ms apart.
func wantPacedAt500ms(t *testing.T, l *hostLimiter, start time.Time) {
	t.Helper()
	var got []time.Duration
	for range 3 {
		got = append(got, l.schedule("h", 0).Sub(start))
	}
	want := []time.Duration{100 * time.Millisecond, 600 * time.Millisecond, 1100 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("put-back jobs due at %v, want %v", got, want)
	}
}
