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

// A host whose slots are turning over is worth a short wait; a host whose
// last slot came free longer ago than the wait is not: the worker is
// better used for another receiver's job.
func TestHostLimiterWaitsOnlyWhileSlotsTurnOver(t *testing.T) {
	l, clock := newTestLimiter(1)
	ctx := context.Background()
	if !l.acquire(ctx, "slow", time.Hour) {
		t.Fatal("first request must get the slot")
	}
	clock.advance(2 * time.Second) // the request is still in flight
	done := make(chan bool, 1)
	go func() { done <- l.acquire(ctx, "slow", time.Second) }()
	select {
	case got := <-done:
		if got {
			t.Fatal("got a slot that is still held")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a worker waited at a host whose slot has not come free for longer than the wait")
	}

	// Turning over: the slot came free just now, so the next full moment is
	// worth waiting through.
	l.release("slow", 2*time.Second)
	if !l.acquire(ctx, "slow", time.Hour) {
		t.Fatal("the free slot must be taken")
	}
	go func() { done <- l.acquire(ctx, "slow", time.Hour) }()
	waitFor(t, 10*time.Second, "a worker waiting for the slot", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.hosts["slow"].waiting == 1
	})
	l.release("slow", time.Millisecond)
	if !<-done {
		t.Fatal("the waiting worker did not get the slot given back")
	}
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
