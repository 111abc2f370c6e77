package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// fakeClock is a hand-moved clock for the scheduler's decisions.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestScheduler(workers, hardCap int) (*scheduler, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newScheduler(workers, hardCap)
	s.now = clock.now
	return s, clock
}

// jobsFor makes n jobs of group, with entry ids group-from .. group-(from+n-1).
func jobsFor(group string, from, n int, at time.Time) []*heldJob {
	jobs := make([]*heldJob, n)
	for i := range jobs {
		jobs[i] = &heldJob{task: task{entryID: fmt.Sprintf("%s-%d", group, from+i)}, group: group, touched: at}
	}
	return jobs
}

// startAll starts every job the scheduler lets start now and returns them.
func startAll(s *scheduler) []*heldJob {
	var started []*heldJob
	for j := s.tryNext(); j != nil; j = s.tryNext() {
		started = append(started, j)
	}
	return started
}

// running counts the requests in flight of each group.
func running(s *scheduler) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for name, g := range s.groups {
		if g.running > 0 {
			out[name] = g.running
		}
	}
	return out
}

func wantRunning(t *testing.T, s *scheduler, want map[string]int) {
	t.Helper()
	got := running(s)
	if len(got) != len(want) {
		t.Fatalf("in flight %v, want %v", got, want)
	}
	for g, n := range want {
		if got[g] != n {
			t.Fatalf("in flight %v, want %v", got, want)
		}
	}
}

func TestShareOneGroupUsesEveryWorker(t *testing.T) {
	s, clock := newTestScheduler(8, 0)
	parked := s.add(jobsFor("a", 0, 20, clock.now()))
	// In memory: 8 in flight and 8 waiting (twice the limit); the rest parked.
	if want := []string{"a-16", "a-17", "a-18", "a-19"}; !slices.Equal(parked, want) {
		t.Fatalf("parked %v, want %v", parked, want)
	}
	started := startAll(s)
	if len(started) != 8 || started[0].task.entryID != "a-0" || started[7].task.entryID != "a-7" {
		t.Fatalf("started %d jobs, want a-0..a-7 in order", len(started))
	}
	wantRunning(t, s, map[string]int{"a": 8})
	if q, p, g := s.counts(); q != 8 || p != 4 || g != 1 {
		t.Fatalf("counts: %d queued, %d parked, %d groups; want 8, 4, 1", q, p, g)
	}
}

func TestShareTwoGroupsSplitTheWorkers(t *testing.T) {
	s, clock := newTestScheduler(8, 0)
	var jobs []*heldJob
	for i := range 20 {
		jobs = append(jobs, jobsFor("a", i, 1, clock.now())...)
		jobs = append(jobs, jobsFor("b", i, 1, clock.now())...)
	}
	s.add(jobs)
	startAll(s)
	wantRunning(t, s, map[string]int{"a": 4, "b": 4})
	// A request of a ends: a's next job takes its place, not b's.
	s.done("a", 0)
	if j := s.tryNext(); j == nil || j.group != "a" {
		t.Fatalf("after a's request ended, started %+v, want a job of a", j)
	}
	if j := s.tryNext(); j != nil {
		t.Fatalf("started %s beyond the shares", j.task.entryID)
	}
	// Three groups: 8/3 each, in whole workers 3, 3 and 2.
	s.mu.Lock()
	s.group("c").incoming = 20
	s.rebalance()
	limits := []int{s.groups["a"].limit, s.groups["b"].limit, s.groups["c"].limit}
	s.group("c").incoming = 0
	s.mu.Unlock()
	if slices.Sort(limits); !slices.Equal(limits, []int{2, 3, 3}) {
		t.Errorf("limits %v, want 2, 3 and 3", limits)
	}
	s.add(jobsFor("c", 0, 20, clock.now()))
	for range 4 {
		s.done("a", 0)
		s.done("b", 0)
	}
	for range 8 { // the 8 workers
		if s.tryNext() == nil {
			t.Fatal("a worker found no job to start")
		}
	}
	got := running(s)
	if got["a"]+got["b"]+got["c"] != 8 || min(got["a"], got["b"], got["c"]) < 2 || max(got["a"], got["b"], got["c"]) > 3 {
		t.Fatalf("in flight %v, want 8 in all, 2 or 3 each", got)
	}
}

// What a group does not use goes to the others, work-conserving.
func TestShareUnusedShareGoesToOthers(t *testing.T) {
	s, clock := newTestScheduler(8, 0)
	s.add(append(jobsFor("small", 0, 2, clock.now()), jobsFor("big", 0, 30, clock.now())...))
	startAll(s)
	wantRunning(t, s, map[string]int{"small": 2, "big": 6})

	// 64 workers: 2 and 10 are what two groups want; the other two split
	// the remaining 52.
	s, clock = newTestScheduler(64, 0)
	for name, n := range map[string]int{"two": 2, "ten": 10, "x": 1000, "y": 1000} {
		s.add(jobsFor(name, 0, n, clock.now()))
	}
	startAll(s)
	wantRunning(t, s, map[string]int{"two": 2, "ten": 10, "x": 26, "y": 26})
}

// A slow group (its requests never end here) keeps to its half while a
// fast one's jobs come and go, even at instants when the fast one has
// nothing waiting or in flight; once the fast one's jobs have stopped for
// shareMemory, the slow one may use every worker.
func TestShareSlowGroupStaysWithinItsShareWhileFastFlows(t *testing.T) {
	s, clock := newTestScheduler(8, 0)
	s.add(jobsFor("fast", 0, 8, clock.now()))
	s.add(jobsFor("slow", 0, 100, clock.now()))
	next := 8
	for round := range 200 {
		for _, j := range startAll(s) {
			if j.group == "fast" {
				s.done("fast", 0) // fast: over at once
			}
		}
		if n := running(s)["slow"]; n > 4 {
			t.Fatalf("round %d: the slow group has %d requests in flight, more than its share of 4", round, n)
		}
		clock.advance(10 * time.Millisecond)
		s.tick()
		if round%3 != 0 { // every third round the fast group has nothing at all
			s.add(jobsFor("fast", next, 6, clock.now()))
			next += 6
		}
	}
	for more := true; more; { // the fast group's last jobs
		more = false
		for _, j := range startAll(s) {
			if j.group == "fast" {
				s.done("fast", 0)
				more = true
			}
		}
	}
	if n := running(s)["slow"]; n != 4 {
		t.Fatalf("the slow group has %d requests in flight, want its share of 4", n)
	}
	clock.advance(shareMemory)
	s.tick()
	startAll(s)
	wantRunning(t, s, map[string]int{"slow": 8})
}

// A fast group whose demand dips for longer than shareMemory, but not for
// as long as the slow group's requests take, keeps its share: a worker
// given to the slow group would be gone for that long. Once the fast
// group's jobs have stopped for the slow group's request time, the slow
// group may use every worker.
func TestShareRemembersDemandForTheSlowGroupsRequestTime(t *testing.T) {
	s, clock := newTestScheduler(8, 0)
	s.add(jobsFor("slow", 0, 100, clock.now()))
	s.add(jobsFor("fast", 0, 8, clock.now()))
	startAll(s)
	wantRunning(t, s, map[string]int{"slow": 4, "fast": 4})
	// The slow group's requests take 3s: its first four end, the next start.
	for range 30 {
		clock.advance(100 * time.Millisecond)
		s.tick()
	}
	for range 4 {
		s.done("slow", 3*time.Second)
	}
	for range 4 {
		s.done("fast", time.Millisecond)
	}
	startAll(s) // the fast group's last four, and four more slow ones
	wantRunning(t, s, map[string]int{"slow": 4, "fast": 4})
	for range 4 {
		s.done("fast", time.Millisecond)
	}
	// The fast group has had nothing for twice shareMemory: the slow one
	// still keeps to its share, since the fast one's next jobs would
	// otherwise wait for the slow one's requests.
	for range 20 {
		clock.advance(100 * time.Millisecond)
		s.tick()
		startAll(s)
	}
	wantRunning(t, s, map[string]int{"slow": 4})
	clock.advance(time.Second) // 3s since the fast group's last job
	s.tick()
	startAll(s)
	wantRunning(t, s, map[string]int{"slow": 8})
}

// Each demand counts for a whole window after the group last had it, then
// gives way to the largest one since.
func TestShareRemembersEachDemandForAWholeWindow(t *testing.T) {
	var g hostGroup
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	for _, step := range []struct{ ms, demand, want int }{
		{0, 1, 1}, {490, 5, 5}, {500, 0, 5}, {1000, 2, 5}, {1489, 0, 5},
		{1490, 0, 2}, // 5 was last seen a second ago
		{1999, 1, 2}, {2000, 0, 1}, {2998, 0, 1},
		{2999, 0, 0},
	} {
		if got := g.remember(at(step.ms), step.demand, time.Second); got != step.want {
			t.Fatalf("at %d ms, demand %d: remembered %d, want %d", step.ms, step.demand, got, step.want)
		}
	}
}

func TestShareHardCap(t *testing.T) {
	s, clock := newTestScheduler(8, 3)
	s.add(append(jobsFor("a", 0, 10, clock.now()), jobsFor("b", 0, 1, clock.now())...))
	startAll(s)
	wantRunning(t, s, map[string]int{"a": 3, "b": 1})
}

// A group's jobs beyond twice its limit are parked as ids; they are read
// back in order, once its queue runs short, and jobs read for it
// meanwhile are parked behind them.
func TestShareParksAndFetchesInOrder(t *testing.T) {
	s, clock := newTestScheduler(4, 0)
	if parked := s.add(jobsFor("a", 0, 20, clock.now())); len(parked) != 12 || parked[0] != "a-8" {
		t.Fatalf("parked %v, want a-8..a-19", parked)
	}
	if parked := s.add(jobsFor("a", 20, 1, clock.now())); !slices.Equal(parked, []string{"a-20"}) {
		t.Fatalf("a job read while others are parked: parked %v, want it parked behind them", parked)
	}
	startAll(s)
	if f := s.toFetch(100); len(f) != 0 {
		t.Fatalf("fetched %v while the queue still holds a full limit", f)
	}
	for range 4 {
		s.done("a", 0)
	}
	startAll(s) // a-4..a-7: the queue is empty
	f := s.toFetch(100)
	if len(f) != 1 || !slices.Equal(f[0].ids, []string{"a-8", "a-9", "a-10", "a-11"}) {
		t.Fatalf("to fetch %v, want a-8..a-11 (room for 4)", f)
	}
	if q, p, _ := s.counts(); q != 0 || p != 9 {
		t.Fatalf("counts: %d queued, %d parked; want 0, 9", q, p)
	}
	var back []*heldJob
	for _, id := range f[0].ids[1:] { // a-8 did not come back: another engine has it
		back = append(back, &heldJob{task: task{entryID: id}, group: "a", touched: clock.now()})
	}
	s.fetched(f[0], back)
	for range 4 {
		s.done("a", 0)
	}
	if got := startAll(s); len(got) != 3 || got[0].task.entryID != "a-9" {
		t.Fatalf("started %d jobs, want a-9, a-10, a-11", len(got))
	}
}

// Waiting jobs whose idle time is due for a reset are listed; those found
// no longer pending with the engine are dropped.
func TestShareTouchDropsJobsNoLongerOurs(t *testing.T) {
	s, clock := newTestScheduler(1, 0)
	s.add(jobsFor("a", 0, 5, clock.now())) // 1 started, 1 queued, 3 parked
	startAll(s)
	clock.advance(time.Second)
	s.add(jobsFor("b", 0, 1, clock.now()))
	l := s.stale(clock.now().Add(-time.Second/2), 100)
	slices.Sort(l.ids)
	if want := []string{"a-1", "a-2", "a-3", "a-4"}; !slices.Equal(l.ids, want) {
		t.Fatalf("stale %v, want %v", l.ids, want)
	}
	lost := s.touched(l, map[string]bool{"a-2": true, "a-4": true}, clock.now())
	if len(lost) != 1 || lost[0].task.entryID != "a-1" {
		t.Fatalf("lost %v, want the queued a-1", lost)
	}
	if q, p, _ := s.counts(); q != 1 || p != 2 {
		t.Fatalf("counts: %d queued, %d parked; want 1 (b-0), 2 (a-2, a-4)", q, p)
	}
	if l := s.stale(clock.now().Add(-time.Second/2), 100); len(l.ids) != 0 {
		t.Fatalf("stale right after a reset: %v", l.ids)
	}
}

func TestHostGroupOf(t *testing.T) {
	for host, want := range map[string]string{
		"example.com":       "example.com",
		"a.example.com":     "example.com",
		"A.B.Example.COM.":  "example.com",
		"a.example.co.uk":   "example.co.uk",
		"a.example.test":    "example.test",
		"alice.github.io":   "alice.github.io", // a hosting provider's customers stay apart
		"x.alice.github.io": "alice.github.io",
		"co.uk":             "co.uk",
		"127.0.0.1":         "127.0.0.1",
		"::1":               "::1",
		"2001:db8::1":       "2001:db8::1",
		"localhost":         "localhost",
		"xn--bcher-kva.de":  "xn--bcher-kva.de",
	} {
		if got := hostGroupOf(host); got != want {
			t.Errorf("hostGroupOf(%q) = %q, want %q", host, got, want)
		}
	}
}

// quickGroup reads the group of a plain job from its URL alone, the same
// group the full parse gives, and gives up on anything else.
func TestQuickGroup(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want string // "" when quickGroup must give up
	}{
		{`{"url":"https://a.example.com/hook","webhookId":"w","data":{}}`, "example.com"},
		{`{"webhookId":"w", "url" : "http://B.Example.COM:8080?x=1", "data":{}}`, "example.com"},
		{`{"url":"http://127.0.0.1:9000/in","data":{"id":1}}`, "127.0.0.1"},
		{`{"url":"HTTPS://localhost","data":1}`, "localhost"},
		{`{"url":"http://[::1]:8080/","data":1}`, ""},                    // IPv6 literal: the parser's
		{`{"url":"http://user:pw@example.com/","data":1}`, ""},           // user info
		{`{"url":"http://ex%61mple.com/","data":1}`, ""},                 // percent-encoded host
		{`{"url":"http://b\u00fccher.de/","data":1}`, ""},                // an escape in the value
		{`{"url":"http://bücher.de/","data":1}`, ""},                     // not ASCII
		{`{"url":"ftp://example.com/","data":1}`, ""},                    // not http(s)
		{`{"url":"http:///path","data":1}`, ""},                          // no host
		{`{"url":42,"data":1}`, ""},                                      // not a string
		{`{"URL":"http://example.com/","data":1}`, "example.com"},        // the parser matches names in any case
		{`{"data":{"url":"http://x.test/"},"url":"http://y.test/"}`, ""}, // two: the parser knows which counts
		{`{"data":{"kind":"url"},"webhookId":"w"}`, ""},                  // a value, not a key
		{`{"webhookId":"w"}`, ""},
		// Another spelling beside it, or nested, may be the one the parser keeps.
		{`{"url":"http://fast.example/","URL":"http://slow.example/"}`, ""},
		{`{"Url":"http://slow.example/","data":{"url":"http://fast.example/"}}`, ""},
		{`{"url":"http://fast.example/","\u0075rl":"http://slow.example/"}`, ""},
		{`{"url":"http://fast.example/","\u0055RL":"http://slow.example/"}`, ""},
		{`{"URL":"http://slow.example/","data":{"x\"url":"http://fast.example/"}}`, ""},
		{`{"url":"http://a.example/","data":{"text":"caf\u00e9"}}`, "a.example"}, // an escape that spells no letter of url
	} {
		got, ok := quickGroup(redis.XMessage{Values: map[string]any{sendhooks.StreamField: c.doc}})
		if got != c.want || ok != (c.want != "") {
			t.Errorf("quickGroup(%s) = %q, %v; want %q", c.doc, got, ok, c.want)
			continue
		}
		if ok { // the same group as the full parse
			full := newTask(redis.XMessage{ID: "1-0", Values: map[string]any{sendhooks.StreamField: c.doc}})
			if full.bad != nil || hostGroupOf(full.to.hostname) != got {
				t.Errorf("%s: the full parse gives group %q (bad: %v), quickGroup %q", c.doc, hostGroupOf(full.to.hostname), full.bad, got)
			}
		}
	}
	if _, ok := quickGroup(redis.XMessage{Values: map[string]any{"other": "x"}}); ok {
		t.Error("quickGroup found a group in an entry without the job field")
	}
}

// plan parks exactly the jobs add would park, so that those need not be
// parsed.
func TestSharePlanParksWhatAddWould(t *testing.T) {
	planned, clock := newTestScheduler(4, 0)
	added, _ := newTestScheduler(4, 0)
	added.now = planned.now
	batches := [][]*heldJob{
		append(jobsFor("a", 0, 6, clock.now()), jobsFor("b", 0, 3, clock.now())...),
		append(jobsFor("b", 3, 9, clock.now()), jobsFor("a", 6, 2, clock.now())...),
	}
	var inFlight [2][]*heldJob
	for i, batch := range batches {
		var groups []string
		for _, j := range batch {
			groups = append(groups, j.group)
		}
		park := planned.plan(groups)
		var wantParked []string
		var queue []*heldJob
		var toPark []parkedJob
		for k, j := range batch {
			if park[k] {
				wantParked = append(wantParked, j.task.entryID)
				toPark = append(toPark, parkedJob{id: j.task.entryID, group: j.group, touched: j.touched})
			} else {
				queue = append(queue, j)
			}
		}
		if got := added.add(batch); !slices.Equal(got, wantParked) {
			t.Fatalf("batch %d: add parked %v, plan %v", i, got, wantParked)
		}
		if got := planned.add(queue); len(got) != 0 {
			t.Fatalf("batch %d: jobs planned for memory were parked: %v", i, got)
		}
		planned.park(toPark)
		q1, p1, g1 := planned.counts()
		q2, p2, g2 := added.counts()
		if q1 != q2 || p1 != p2 || g1 != g2 {
			t.Fatalf("batch %d: planned %d queued, %d parked, %d groups; added %d, %d, %d", i, q1, p1, g1, q2, p2, g2)
		}
		inFlight[0] = append(inFlight[0], startAll(planned)...)
		inFlight[1] = append(inFlight[1], startAll(added)...)
	}
	for k, s := range []*scheduler{planned, added} { // their requests end: the queues run short
		for _, j := range inFlight[k] {
			s.done(j.group, 0)
		}
		for _, j := range startAll(s) {
			s.done(j.group, 0)
		}
	}
	byGroup := func(f []fetch) string {
		slices.SortFunc(f, func(x, y fetch) int { return strings.Compare(x.group, y.group) })
		return fmt.Sprint(f)
	}
	f1, f2 := byGroup(planned.toFetch(100)), byGroup(added.toFetch(100))
	if f1 != f2 || f1 == "[]" {
		t.Fatalf("parked ids read back: planned %v, added %v; want the same, and some", f1, f2)
	}
}

// A job read back is queued in its own group, even were it parked in
// another: its requests count against its own host's share.
func TestShareFetchedJobGoesToItsOwnGroup(t *testing.T) {
	s, clock := newTestScheduler(2, 0)
	s.add(jobsFor("a", 0, 6, clock.now())) // 4 in memory (twice the limit of 2), 2 parked
	for _, j := range startAll(s) {
		s.done(j.group, 0)
	}
	startAll(s)
	f := s.toFetch(1)
	if len(f) != 1 || f[0].group != "a" {
		t.Fatalf("to fetch %v, want one of a's", f)
	}
	s.fetched(f[0], []*heldJob{{task: task{entryID: f[0].ids[0]}, group: "b", touched: clock.now()}})
	s.mu.Lock()
	a, b := s.groups["a"], s.groups["b"]
	s.mu.Unlock()
	if b == nil || len(b.queue) != 1 || len(a.queue) != 0 || a.fetching != 0 {
		t.Fatalf("after the read back: a has %d queued and %d being read, b %v; want the job queued in b", len(a.queue), a.fetching, b)
	}
}

// heldSet takes each id once until it is removed, and drops its map once
// emptied after holding more than dropAfter ids.
func TestHeldSet(t *testing.T) {
	var h heldSet
	if !h.add("1-1") || h.add("1-1") || !h.add("1-2") {
		t.Fatal("add: want true for a new id and false for one held")
	}
	h.remove("1-1")
	if !h.add("1-1") {
		t.Fatal("add after remove: want true")
	}
	h.remove("1-1")
	h.remove("1-2")
	h.remove("1-3") // not held: nothing happens
	if h.ids == nil {
		t.Fatal("a small map was dropped when emptied; want it kept")
	}
	for i := range dropAfter + 1 {
		h.add(fmt.Sprintf("2-%d", i))
	}
	for i := range dropAfter {
		h.remove(fmt.Sprintf("2-%d", i))
	}
	if h.ids == nil || len(h.ids) != 1 {
		t.Fatalf("%d ids held, want 1", len(h.ids))
	}
	h.remove(fmt.Sprintf("2-%d", dropAfter))
	if h.ids != nil || h.peak != 0 {
		t.Fatalf("emptied after %d ids: map %v, peak %d; want it dropped", dropAfter+1, h.ids != nil, h.peak)
	}
	if !h.add("3-1") || h.add("3-1") {
		t.Fatal("add after the map was dropped: want true, then false")
	}
}
