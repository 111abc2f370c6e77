package engine

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
)

// Fair share of the workers across receiver hosts.
//
// Jobs read from the stream wait with the engine, grouped by receiver host,
// until a worker is free and their host group is within its share; the
// scheduler hands them to workers in round-robin order across the groups.
// A job for a busy host therefore costs nothing in Redis: it stays pending
// in the consumer group, unacknowledged, where it was read.
//
// The share is max-min fair over the workers: every group with jobs
// waiting or in flight may have as many requests in flight as the others,
// and what a group does not use goes to the groups that want more. A
// group alone may use every worker. What a group "wants" is its largest
// number of jobs waiting or in flight over a recent window, not just the
// current one: a fast receiver's jobs come and go within milliseconds,
// and between two reads it may for an instant have few. If that instant
// gave its share to a slow receiver, the slow receiver's requests would
// hold the workers for seconds; remembering the fast receiver's demand
// keeps the slow one within its share. The window is shareMemory, or the
// time the slowest group's requests take when that is longer, since that
// is how long a worker given away is gone. The cost is that a receiver
// whose jobs have stopped keeps its share reserved for that long.

// shareMemory is how long at least a host group's largest demand counts
// towards its share after it has fallen.
const shareMemory = time.Second

// maxParked bounds the jobs an engine keeps as ids only (parked) because
// their host group already has as many jobs in memory as it may: about
// 100 bytes each here and in Redis's pending list. When it is reached the
// engine stops reading new jobs until some are delivered. It is how far
// the engine can read past a slow receiver's backlog to reach the jobs of
// other receivers.
const maxParked = 100_000

// hostGroupOf is the host group of a receiver's host name: the share of
// the workers is counted per group. A name is grouped by its registrable
// domain (the public suffix plus one label, after the Public Suffix List),
// so that a.example.com and b.example.com share one share and a producer
// cannot multiply a receiver's share by inventing subdomains, while
// customers of a hosting provider listed there (alice.github.io,
// bob.github.io) stay apart. IP literals and single-label names
// (localhost) are groups of their own. The port is not part of the group:
// receivers on several ports of one machine share the machine.
//
// The resolved address would group more tightly, but it is only known
// once a connection is being made, after a worker was already given the
// job; the registrable domain is known from the URL alone, costs no
// lookup, and does not change when DNS answers do.
func hostGroupOf(hostname string) string {
	h := strings.ToLower(strings.TrimSuffix(hostname, "."))
	if _, err := netip.ParseAddr(h); err == nil || !strings.Contains(h, ".") {
		return h
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return d
	}
	return h // a public suffix itself
}

// heldJob is a job this engine read and holds in memory until a worker
// takes it.
type heldJob struct {
	task    task
	group   string
	touched time.Time // when its idle time in the consumer group was last reset
}

// parkedRun is a run of job ids of one host group kept without their jobs,
// pending in the consumer group, until the group has room for them.
type parkedRun struct {
	ids     []string
	touched time.Time // when their idle time was last reset
}

// hostGroup is what the scheduler knows of one host group.
type hostGroup struct {
	name     string
	limit    int          // requests it may have in flight, from the last rebalance
	running  int          // requests in flight
	fetching int          // parked jobs being read back
	incoming int          // jobs of a batch being added
	queue    []*heldJob   // jobs in memory, oldest first
	parked   []*parkedRun // ids kept for later, oldest first
	nParked  int
	// recent holds the demands seen over the window that still count:
	// each smaller than the one before it, so the first is the largest (a
	// sliding maximum). A demand counts until a window has passed since
	// the last time the group's demand was at least as large.
	recent []demandSample
	took   time.Duration // its requests' time, a moving average
	ready  bool          // in scheduler.ready
}

// demandSample is a group's demand at one rebalance.
type demandSample struct {
	at time.Time
	n  int
}

// remember records the group's demand d at now and returns the largest
// demand over the window before now.
func (g *hostGroup) remember(now time.Time, d int, window time.Duration) int {
	for len(g.recent) > 0 && g.recent[len(g.recent)-1].n <= d {
		g.recent = g.recent[:len(g.recent)-1]
	}
	g.recent = append(g.recent, demandSample{at: now, n: d})
	expired := 0
	for expired < len(g.recent)-1 && now.Sub(g.recent[expired].at) >= window {
		expired++
	}
	g.recent = g.recent[expired:]
	return g.recent[0].n
}

// demand is the jobs the group has waiting or in flight.
func (g *hostGroup) demand() int {
	return g.running + len(g.queue) + g.nParked + g.fetching + g.incoming
}

// held is the jobs of the group in memory: in flight, queued or being read back.
func (g *hostGroup) held() int { return g.running + len(g.queue) + g.fetching }

// roomFor is how many more jobs the group may hold in memory: twice its
// limit, enough to have its next jobs waiting when its requests end. Past
// that its jobs are parked, so that a slow receiver's backlog cannot take
// up the memory that other receivers' jobs need.
func (g *hostGroup) roomFor() int { return 2*g.limit - g.held() }

// scheduler keeps the jobs read but not yet started, by host group, and
// hands them to workers within each group's share. Its methods are safe
// for concurrent use.
type scheduler struct {
	workers int
	hardCap int              // maxPerHost: a group never has more in flight; 0: none
	memory  time.Duration    // shareMemory, but for tests
	now     func() time.Time // time.Now, but for tests

	mu       sync.Mutex
	wake     *sync.Cond // signalled when a job may have become startable
	closed   bool
	groups   map[string]*hostGroup
	ready    []*hostGroup // groups with jobs queued, in round-robin order
	cursor   int          // where in ready the next pick starts
	queued   int          // jobs queued in memory, all groups
	parked   int          // jobs parked as ids, all groups
	balanced time.Time    // last rebalance
	scratch  []*hostGroup
}

func newScheduler(workers, hardCap int) *scheduler {
	s := &scheduler{workers: workers, hardCap: hardCap, memory: shareMemory, now: time.Now, groups: make(map[string]*hostGroup)}
	s.wake = sync.NewCond(&s.mu)
	return s
}

// group returns the named group, creating it; the caller holds s.mu.
func (s *scheduler) group(name string) *hostGroup {
	g := s.groups[name]
	if g == nil {
		g = &hostGroup{name: name, limit: 1}
		s.groups[name] = g
	}
	return g
}

// add takes jobs just read. A job whose group has as many jobs in memory
// as it may, or has jobs parked already (so that a group's jobs start in
// the order read), is parked: add returns the ids of the parked jobs,
// whose memory the caller gives back.
func (s *scheduler) add(jobs []*heldJob) (parked []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		s.group(j.group).incoming++
	}
	s.rebalance()
	var runs map[*hostGroup]*parkedRun
	for _, j := range jobs {
		g := s.groups[j.group]
		g.incoming--
		if g.nParked == 0 && g.roomFor() > 0 {
			s.enqueue(g, j)
			continue
		}
		runs = s.parkOne(runs, g, j.task.entryID, j.touched)
		parked = append(parked, j.task.entryID)
	}
	s.signal(len(jobs) - len(parked))
	return parked
}

// plan says which of the jobs of groups, about to be added in this order,
// add would park for want of room: those the caller need not parse, but
// may park by id at once (park). It rebalances with them counted, as add
// does. Room may change before add is called (requests end, a rebalance
// lowers a limit): a job planned for memory may then be parked by add,
// ahead of those planned for parking, and one planned for parking may
// have fitted; either way a group's jobs keep their order.
func (s *scheduler) plan(groups []string) (park []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range groups {
		s.group(name).incoming++
	}
	s.rebalance()
	room := make(map[*hostGroup]int)
	park = make([]bool, len(groups))
	for i, name := range groups {
		g := s.groups[name]
		g.incoming--
		r, seen := room[g]
		if !seen {
			r = g.roomFor()
			if g.nParked > 0 {
				r = 0
			}
		}
		park[i] = r <= 0
		room[g] = r - 1
	}
	return park
}

// parkedJob is a job to park by id, unparsed, in its host group.
type parkedJob struct {
	id, group string
	touched   time.Time // when its idle time in the consumer group was last reset
}

// park parks jobs by id behind those their groups have parked already.
func (s *scheduler) park(jobs []parkedJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var runs map[*hostGroup]*parkedRun
	for _, j := range jobs {
		runs = s.parkOne(runs, s.group(j.group), j.id, j.touched)
	}
}

// parkOne parks one id in g, in the run runs holds for g, started if
// there is none; the caller holds s.mu.
func (s *scheduler) parkOne(runs map[*hostGroup]*parkedRun, g *hostGroup, id string, touched time.Time) map[*hostGroup]*parkedRun {
	if runs == nil {
		runs = make(map[*hostGroup]*parkedRun)
	}
	r := runs[g]
	if r == nil {
		r = &parkedRun{touched: touched}
		runs[g] = r
		g.parked = append(g.parked, r)
	}
	r.ids = append(r.ids, id)
	g.nParked++
	s.parked++
	return runs
}

// signal wakes up to n waiting workers, one per job queued; the caller
// holds s.mu.
func (s *scheduler) signal(n int) {
	for range min(n, s.workers) {
		s.wake.Signal()
	}
}

// enqueue queues j in g; the caller holds s.mu.
func (s *scheduler) enqueue(g *hostGroup, j *heldJob) {
	g.queue = append(g.queue, j)
	s.queued++
	if !g.ready {
		g.ready = true
		s.ready = append(s.ready, g)
	}
}

// next waits for a job a worker may start and returns it, counting it in
// flight for its group until done is called; nil once the scheduler is
// closed.
func (s *scheduler) next() *heldJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed {
		if j := s.pick(); j != nil {
			return j
		}
		s.wake.Wait()
	}
	return nil
}

// tryNext is next without the wait: nil when no job may start now.
func (s *scheduler) tryNext() *heldJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.pick()
}

// pick takes the next job in round-robin order from a group within its
// limit; the caller holds s.mu.
func (s *scheduler) pick() *heldJob {
	n := len(s.ready)
	for i := range n {
		at := (s.cursor + i) % n
		g := s.ready[at]
		if g.running >= g.limit {
			continue
		}
		j := g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		s.queued--
		g.running++
		s.cursor = at + 1
		if len(g.queue) == 0 {
			g.queue = nil
			g.ready = false
			s.ready = slices.Delete(s.ready, at, at+1)
			s.cursor = at
		}
		return j
	}
	return nil
}

// done ends a job's time in flight, started by next; took is how long its
// request took, or 0 when it made none.
func (s *scheduler) done(group string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[group]; g != nil {
		g.running--
		switch {
		case took <= 0:
		case g.took == 0:
			g.took = took
		default:
			g.took += (took - g.took) / 8
		}
	}
	s.wake.Signal()
}

// close makes next return nil to every worker, now and from then on. The
// jobs still waiting are let go: they stay pending in the consumer group.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.wake.Broadcast()
}

// tick rebalances the shares as remembered demand fades; the engine calls
// it a few times per shareMemory.
func (s *scheduler) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rebalance() {
		s.wake.Broadcast()
	}
}

// rebalance sets each group's limit, a max-min fair split of the workers
// over the groups' demands, and forgets groups with no demand left to
// remember; it reports whether a limit changed. The caller holds s.mu.
func (s *scheduler) rebalance() bool {
	now := s.now()
	s.balanced = now
	window := s.memory
	for _, g := range s.groups {
		window = max(window, g.took)
	}
	list := s.scratch[:0]
	for name, g := range s.groups {
		if g.remember(now, g.demand(), window) == 0 {
			delete(s.groups, name)
			continue
		}
		list = append(list, g)
	}
	want := func(g *hostGroup) int {
		w := g.recent[0].n // the largest demand over the window, just remembered
		if s.hardCap > 0 {
			w = min(w, s.hardCap)
		}
		return min(w, s.workers)
	}
	slices.SortFunc(list, func(a, b *hostGroup) int { return want(a) - want(b) })
	// Smallest demands first: each gets what it wants while that is no
	// more than an equal split of what is left; from the first that wants
	// more, every group left gets an equal split, whole workers, the spare
	// ones going to the first of them. The limits then add up to the
	// workers, so that every group can always reach its share; only with
	// more groups than workers do they add up to more, each group still
	// having at least one.
	changed := false
	left := s.workers
	level, spare := -1, 0
	for i, g := range list {
		limit := want(g)
		if level < 0 && limit*(len(list)-i) > left {
			level = left / (len(list) - i)
			spare = left - level*(len(list)-i)
		}
		if level >= 0 {
			limit = level
			if spare > 0 {
				limit++
				spare--
			}
		}
		left -= limit
		limit = max(limit, 1)
		if limit != g.limit {
			g.limit, changed = limit, true
		}
	}
	clear(list)
	s.scratch = list[:0]
	return changed
}

// fetch is parked ids of one group chosen to be read back.
type fetch struct {
	group string
	ids   []string
}

// toFetch chooses up to n parked ids to read back, from groups whose
// queues are running short and who have room in memory for them, and
// counts them as being read back until fetched is called for them. The
// caller reads them back in one round trip, however many groups they are
// of.
func (s *scheduler) toFetch(n int) []fetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []fetch
	for _, g := range s.groups {
		if n == 0 {
			break
		}
		if g.nParked == 0 || len(g.queue)+g.fetching >= g.limit {
			continue
		}
		k := min(n, g.roomFor(), g.nParked)
		if k <= 0 {
			continue
		}
		f := fetch{group: g.name}
		for len(f.ids) < k {
			r := g.parked[0]
			take := min(k-len(f.ids), len(r.ids))
			f.ids = append(f.ids, r.ids[:take]...)
			r.ids = r.ids[take:]
			if len(r.ids) == 0 {
				g.parked[0] = nil
				g.parked = g.parked[1:]
			}
		}
		g.nParked -= k
		s.parked -= k
		g.fetching += k
		n -= k
		out = append(out, f)
	}
	return out
}

// fetched queues the jobs read back for f, each in its own group; the ids
// of f that did not come back are no longer this engine's to deliver.
func (s *scheduler) fetched(f fetch, jobs []*heldJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.group(f.group).fetching -= len(f.ids)
	for _, j := range jobs {
		s.enqueue(s.group(j.group), j)
	}
	s.signal(len(jobs))
}

// touchList is what stale gathered: the jobs and parked runs whose idle
// time is to be reset.
type touchList struct {
	jobs []*heldJob
	runs []*parkedRun
	ids  []string
}

// stale lists up to n ids of waiting jobs, queued or parked, whose idle
// time was last reset before before.
func (s *scheduler) stale(before time.Time, n int) touchList {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l touchList
	for _, g := range s.groups {
		for _, j := range g.queue {
			if len(l.ids) >= n {
				return l
			}
			if j.touched.Before(before) {
				l.jobs = append(l.jobs, j)
				l.ids = append(l.ids, j.task.entryID)
			}
		}
		for _, r := range g.parked {
			if len(l.ids)+len(r.ids) > n && len(l.ids) > 0 {
				return l
			}
			if r.touched.Before(before) {
				l.runs = append(l.runs, r)
				l.ids = append(l.ids, r.ids...)
			}
		}
	}
	return l
}

// touched records that the idle time of l's ids was reset at at, except
// for those not in ours, which are no longer pending with this engine
// (another engine claimed them, or they were deleted): they are dropped,
// and touched returns the queued jobs among them, whose memory the caller
// gives back.
func (s *scheduler) touched(l touchList, ours map[string]bool, at time.Time) (lost []*heldJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range l.jobs {
		if ours[j.task.entryID] {
			j.touched = at
			continue
		}
		g := s.groups[j.group]
		if g == nil {
			continue
		}
		if i := slices.Index(g.queue, j); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			s.queued--
			if len(g.queue) == 0 {
				g.ready = false
				if k := slices.Index(s.ready, g); k >= 0 {
					s.ready = slices.Delete(s.ready, k, k+1)
					s.cursor = 0
				}
			}
			lost = append(lost, j)
		}
	}
	for _, r := range l.runs {
		kept := r.ids[:0]
		for _, id := range r.ids {
			if ours[id] {
				kept = append(kept, id)
			}
		}
		if gone := len(r.ids) - len(kept); gone > 0 {
			s.dropParked(r, gone)
		}
		r.ids = kept
		r.touched = at
	}
	return lost
}

// dropParked uncounts gone ids of run r; the caller holds s.mu.
func (s *scheduler) dropParked(r *parkedRun, gone int) {
	for _, g := range s.groups {
		if slices.Contains(g.parked, r) {
			g.nParked -= gone
			s.parked -= gone
			return
		}
	}
}

// counts reports the jobs waiting in memory, the jobs parked, and the host
// groups with jobs waiting or in flight.
func (s *scheduler) counts() (queued, parked, groups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.demand() > 0 {
			groups++
		}
	}
	return s.queued, s.parked, groups
}
