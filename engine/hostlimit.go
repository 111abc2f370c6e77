package engine

import (
	"context"
	"sync"
	"time"
)

// maxDeferDelay bounds how far ahead a job put back for a busy receiver is
// scheduled: a receiver that has become fast again waits at most this long
// for the jobs queued for it while it was slow.
const maxDeferDelay = 2 * time.Minute

// hostLimiter bounds concurrent requests per receiver host, so that a slow
// or dead receiver holds at most its share of the workers.
//
// A worker that finds its host full waits for a slot only when one is
// expected soon: within a tenth of the wait, reckoning the host's time per
// request spread over its slots, once for each worker already waiting. At
// a host whose requests take longer, waiting would idle a worker that
// other receivers' jobs could use: the job is put back at once, scheduled
// for when the host is likely to have room for it, so that each job for a
// slow receiver is put back about once instead of over and over.
type hostLimiter struct {
	limit int
	now   func() time.Time // time.Now, but for tests

	mu    sync.Mutex
	hosts map[string]*hostState
	swept time.Time // when entries no longer needed were last dropped
}

// hostState is what the limiter knows of one receiver host.
type hostState struct {
	tokens   chan struct{} // one per request in flight
	users    int           // holders and waiters of tokens
	waiting  int           // workers waiting for a token
	lastFree time.Time     // when a token was last given back (or the host first seen)
	avg      time.Duration // moving average of request durations; 0 until one ends
	nextSlot time.Time     // when the next job put back for this host is due
}

func newHostLimiter(limit int) *hostLimiter {
	return &hostLimiter{limit: limit, now: time.Now, hosts: make(map[string]*hostState)}
}

// entry returns host's state, creating it; the caller holds l.mu.
func (l *hostLimiter) entry(host string) *hostState {
	h := l.hosts[host]
	if h == nil {
		h = &hostState{tokens: make(chan struct{}, l.limit), lastFree: l.now()}
		l.hosts[host] = h
	}
	return h
}

// acquire takes a slot for host. When none is free it waits, at most
// wait, only when a slot is expected soon (see hostLimiter) and fewer
// workers than its slots are already waiting; false if no slot came.
func (l *hostLimiter) acquire(ctx context.Context, host string, wait time.Duration) bool {
	l.mu.Lock()
	h := l.entry(host)
	h.users++
	l.mu.Unlock()

	select {
	case h.tokens <- struct{}{}:
		return true
	default:
	}
	l.mu.Lock()
	expected := time.Duration(h.waiting+1) * h.perRequest(l.now()) / time.Duration(l.limit)
	soon := expected <= wait/10 && h.waiting < l.limit
	if soon {
		h.waiting++
	}
	l.mu.Unlock()
	got := false
	if soon {
		timer := time.NewTimer(wait)
		select {
		case h.tokens <- struct{}{}:
			got = true
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		l.mu.Lock()
		h.waiting--
		l.mu.Unlock()
	}
	if !got {
		l.leave(host, h)
	}
	return got
}

// release gives back a slot taken by acquire, noting how long the request
// took.
func (l *hostLimiter) release(host string, took time.Duration) {
	l.mu.Lock()
	h := l.hosts[host]
	h.lastFree = l.now()
	if h.avg == 0 {
		h.avg = took
	} else {
		h.avg += (took - h.avg) / 8
	}
	l.mu.Unlock()
	<-h.tokens
	l.leave(host, h)
}

// schedule says when a job put back for host (deferrals times before)
// should come back. Jobs put back are spaced by the host's pace, the time
// it takes per request divided by its slots, after those put back before
// them: they come back about as fast as the host can take them, instead of
// all at once to be put back again. With no time per request to judge by
// (a host first seen this instant), each deferral waits twice as long as
// the last, from half a second.
func (l *hostLimiter) schedule(host string, deferrals int) time.Time {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	h := l.entry(host)
	perRequest := h.perRequest(now)
	if perRequest <= 0 {
		return now.Add(jitter(min(500*time.Millisecond<<min(deferrals, 10), maxDeferDelay)))
	}
	due := now.Add(100 * time.Millisecond)
	if h.nextSlot.After(due) {
		due = h.nextSlot
	}
	if limit := now.Add(maxDeferDelay); due.After(limit) {
		due = limit
	}
	h.nextSlot = due.Add(perRequest / time.Duration(l.limit))
	return due
}

// perRequest is how long a request to the host takes: the moving average
// of those that ended, or, when no slot has come free for longer than
// that, the time since one did, since a host that has turned slow, or
// whose first requests have not ended yet, is at least that slow.
func (h *hostState) perRequest(now time.Time) time.Duration {
	return max(h.avg, now.Sub(h.lastFree))
}

// leave drops a user of h; the entry goes once nobody uses it and no job
// put back for the host is still to come.
func (l *hostLimiter) leave(host string, h *hostState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h.users--
	if h.users == 0 && !h.nextSlot.After(l.now()) {
		delete(l.hosts, host)
	}
}

// sweep drops, about once a minute, the entries that leave kept for jobs
// put back and that nobody has used since; the caller holds l.mu.
func (l *hostLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for host, h := range l.hosts {
		if h.users == 0 && !h.nextSlot.After(now) {
			delete(l.hosts, host)
		}
	}
}
