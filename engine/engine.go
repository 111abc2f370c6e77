// Package engine delivers webhook jobs from a Redis stream.
//
// An Engine reads jobs through a consumer group, POSTs each job's payload,
// signed, to its URL, and records every outcome in Redis before it
// acknowledges the job: a status event in the status stream, and for a
// failed attempt either a scheduled retry (a sorted set scored by due time)
// or, after the last attempt, the job in a dead-letter stream. Jobs that a
// dead engine left pending are claimed by the others after a visibility
// timeout, so several engines can share one stream and losing one loses
// nothing. The engine also keeps the streams from growing for ever: it
// removes the jobs and the status events that every consumer group has
// read and acknowledged, caps the status stream while no group reads it,
// and caps the dead-letter stream (trim.go).
//
// Jobs read wait with the engine, by receiver host group, until a worker
// is free and their group is within its fair share of the workers
// (fairshare.go); they stay pending in the consumer group meanwhile, and
// their idle time there is reset while they wait (hold.go), so that other
// engines do not claim them while this one is alive.
//
// Shutdown order (Run, once its context is done): stop reading, claiming
// and trimming; start no more of the jobs read ahead, which stay pending;
// let in-flight deliveries finish for up to ShutdownTimeout; cancel those
// still running, which leaves their jobs pending for the next start; write
// the outcomes still queued; finish rewriting those whose write failed,
// until they are written or the shutdown deadline passes; stop the
// metrics server.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// Timings of the engine's loops. They are variables only so tests of the
// engine can make them shorter.
var (
	// readBlock is how long one XREADGROUP waits for new jobs; it also
	// bounds how long a stop waits for the read loop.
	readBlock = 2 * time.Second
	// forwardEvery is how often due retries are moved back into the stream.
	forwardEvery = 250 * time.Millisecond
	// parkedPoll is how long the read loop waits for new jobs, or for room
	// to read more, while jobs are parked: parked jobs are read back on its
	// rounds.
	parkedPoll = 20 * time.Millisecond
	// gatherWait is how long the read loop, when a backlog is waiting, lets
	// worker slots gather before a read, so that reads come in batches
	// instead of one job per round trip.
	gatherWait = 2 * time.Millisecond
)

// Engine delivers the jobs of one jobs stream. Create it with New and run
// it with Run.
type Engine struct {
	cfg      Config
	rdb      *redis.Client
	log      *slog.Logger
	keys     keys
	http     *deliverer
	recorder *recorder
	sched    *scheduler
	metrics  *metrics
	upkeep   upkeep

	slots       chan struct{} // one token per job held in memory; from read to acknowledgement
	held        heldSet       // the jobs this engine holds, parked ones included
	workers     sync.WaitGroup
	rerecording sync.WaitGroup // outcomes written again after their batch failed
	redisOK     atomic.Bool

	// faultHook, set only by tests, is called before each job's attempt
	// (ev nil) and before each status event is encoded: a test makes it
	// panic for one job to check that the panic ends that job only.
	faultHook func(t task, ev *sendhooks.StatusEvent)
}

// jobsHeld is how many jobs an engine with numWorkers workers holds in
// memory at most: a job for each worker, and as many again read ahead or
// having their outcomes written, so that a worker finds its next job
// waiting and never waits for a write. Jobs parked for a busy host group
// are held as ids only, up to maxParked.
func jobsHeld(numWorkers int) int { return 2 * numWorkers }

// New returns an engine for a validated configuration (see Load). The
// engine does not own rdb: the caller closes it after Run returns.
func New(cfg Config, rdb *redis.Client, log *slog.Logger) *Engine {
	k := newKeys(cfg)
	e := &Engine{
		cfg:      cfg,
		rdb:      rdb,
		log:      log,
		keys:     k,
		http:     newDeliverer(cfg),
		recorder: newRecorder(rdb, k, jobsHeld(cfg.NumWorkers)),
		sched:    newScheduler(cfg.NumWorkers, cfg.MaxPerHost),
		upkeep:   upkeep{every: trimEvery},
		slots:    make(chan struct{}, jobsHeld(cfg.NumWorkers)),
	}
	e.metrics = newMetrics(e)
	return e
}

// Run delivers jobs until ctx is done, then stops gracefully (see the
// package comment for the order) and returns nil. It returns an error only
// when it cannot start because the metrics address is taken. While Redis
// cannot be reached it keeps trying, reporting not-ready. Run may be
// called once per Engine.
func (e *Engine) Run(ctx context.Context) error {
	stopOps, err := e.serveOps()
	if err != nil {
		return err
	}
	defer stopOps()

	if !e.waitForGroup(ctx) {
		e.log.Info("engine stopped before Redis could be reached")
		return nil
	}
	e.log.Info("engine started", "stream", e.keys.jobs, "group", e.keys.group,
		"consumer", e.cfg.ConsumerName, "workers", e.cfg.NumWorkers)

	// Deliveries run on their own context: a stop must let them finish,
	// and only the shutdown deadline cuts them short.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	// The recorder outlives the workers, whose outcomes it writes.
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	var recording sync.WaitGroup
	recording.Go(func() {
		e.recorder.run(recCtx, func(r entryOutcome, err error) { e.recorded(workCtx, r, err) })
	})

	// A fixed pool of workers rather than a goroutine per job: their
	// stacks, grown by the HTTP client, are kept from job to job. Once ctx
	// is done they start no more jobs: those waiting stay pending.
	stopStarting := context.AfterFunc(ctx, e.sched.close)
	defer stopStarting()
	for range e.cfg.NumWorkers {
		e.workers.Go(func() { e.worker(workCtx) })
	}

	var loops sync.WaitGroup
	loops.Go(func() { e.readLoop(ctx) })
	loops.Go(func() { e.holdLoop(ctx) })
	loops.Go(func() { e.forwardLoop(ctx) })
	loops.Go(func() { e.trimLoop(ctx) })
	loops.Wait()

	deadline := time.AfterFunc(e.cfg.ShutdownTimeout, cancelWork)
	defer deadline.Stop()
	e.workers.Wait()
	stopRecorder()
	recording.Wait()
	e.rerecording.Wait()
	e.http.close()
	e.log.Info("engine stopped")
	return nil
}

// waitForGroup creates the consumer group and loads the record script,
// retrying while Redis is away; false if ctx ended first.
func (e *Engine) waitForGroup(ctx context.Context) bool {
	var b backoff
	for {
		err := ensureGroup(ctx, e.rdb, e.keys)
		if err == nil {
			// Loaded up front so that the first outcome's reply is not a
			// NOSCRIPT that a broken connection could hide.
			err = recordScript.Load(ctx, e.rdb).Err()
		}
		if err == nil {
			e.redisOK.Store(true)
			return true
		}
		e.redisDown("create consumer group", err)
		if !b.wait(ctx) {
			return false
		}
	}
}

// readLoop reads jobs for the workers, never more than the engine may
// hold in memory. It first reads the jobs this consumer left pending when
// it last stopped, and does so again after a failed read; then, each
// round, it reads back parked jobs whose host group has room, claims jobs
// that any consumer (this one included, when recording an outcome failed)
// left pending past the visibility timeout, and fills the remaining room
// with new jobs. While maxParked jobs are parked it reads no new ones.
func (e *Engine) readLoop(ctx context.Context) {
	start := "0" // "0" and on: this consumer's pending entries; ">": new entries
	claimEvery := max(e.cfg.VisibilityTimeout/4, 50*time.Millisecond)
	nextClaim := time.Now().Add(claimEvery)
	claimCursor := "0-0"
	var b backoff
	backlog := false // the last read came back full: more jobs are waiting
	parked := 0      // jobs parked at the last round
	for {
		// With a backlog, or parked jobs to read back, slots are gathered
		// for a moment so that one round trip brings many jobs.
		want := 1
		if backlog || parked > 0 {
			want = max(1, min(e.cfg.NumWorkers/4, e.cfg.BatchSize))
		}
		n := e.acquire(ctx, want, e.cfg.BatchSize)
		if n == 0 {
			return
		}
		var err error
		if start == ">" {
			var got int
			got, err = e.fetchParked(ctx, n)
			n -= got
		}
		if err == nil && n > 0 && start == ">" && time.Now().After(nextClaim) {
			nextClaim = time.Now().Add(claimEvery)
			var claimed int
			claimed, claimCursor, err = e.claim(ctx, n, claimCursor)
			n -= claimed
		}
		_, parked, _ = e.sched.counts()
		switch room := maxParked - parked; {
		case err != nil || n == 0:
			e.release(n)
		case room <= 0:
			// Reading stops until parked jobs are delivered.
			e.release(n)
			backlog = false
			if !sleep(ctx, parkedPoll) {
				return
			}
		default:
			block := readBlock
			if parked > 0 {
				block = parkedPoll
			}
			e.release(n - min(n, room))
			start, backlog, err = e.read(ctx, min(n, room), start, block)
		}
		switch {
		case err == nil:
			e.redisOK.Store(true)
			b.reset()
		case ctx.Err() != nil:
			return
		default:
			e.redisDown("read jobs", err)
			// The reply may have been lost after Redis had already put the
			// entries on this consumer's pending list: read that list again
			// rather than leave them for the visibility timeout. Entries this
			// engine holds already are skipped by hold.
			start = "0"
			if isNoGroup(err) {
				_ = ensureGroup(ctx, e.rdb, e.keys)
			}
			if !b.wait(ctx) {
				return
			}
		}
	}
}

// read takes up to n entries from start (see readLoop), waiting up to
// block for new ones, hands them to the scheduler, gives back the slots it
// did not use, and returns where to read next and whether it got all n (so
// more are likely waiting).
func (e *Engine) read(ctx context.Context, n int, start string, block time.Duration) (next string, full bool, err error) {
	var streams []redis.XStream
	at := time.Now() // their idle time in the group starts at the latest then
	streams, err = e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: e.keys.group, Consumer: e.cfg.ConsumerName,
		Streams: []string{e.keys.jobs, start}, Count: int64(n), Block: block,
	}).Result()
	var msgs []redis.XMessage
	if len(streams) > 0 {
		msgs = streams[0].Messages
	}
	e.release(n - len(msgs))
	pending := start != ">"
	e.hold(ctx, msgs, pending, at)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	full = len(msgs) == n
	if pending && err == nil {
		// Page through this consumer's pending entries, then go on to new ones.
		start = ">"
		if full {
			start = msgs[len(msgs)-1].ID
		}
	}
	return start, full, err
}

// claim takes over up to n entries pending for longer than the visibility
// timeout, hands them to the scheduler, and returns how many it took
// (their slots are kept; the rest of n is still the caller's) and the scan
// cursor to go on from.
func (e *Engine) claim(ctx context.Context, n int, cursor string) (int, string, error) {
	at := time.Now()
	msgs, next, err := e.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: e.keys.jobs, Group: e.keys.group, Consumer: e.cfg.ConsumerName,
		MinIdle: e.cfg.VisibilityTimeout, Start: cursor, Count: int64(n),
	}).Result()
	if err != nil {
		return 0, "0-0", fmt.Errorf("claim stale jobs: %w", err)
	}
	if len(msgs) > 0 {
		e.log.Info("claimed jobs left pending past the visibility timeout", "count", len(msgs))
	}
	e.hold(ctx, msgs, true, at)
	return len(msgs), next, nil
}

// forwardLoop moves retries that have fallen due back into the jobs stream.
func (e *Engine) forwardLoop(ctx context.Context) {
	const batch = 256
	ticker := time.NewTicker(forwardEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for ctx.Err() == nil {
			now := time.Now().UnixMilli()
			moved, err := forwardScript.Run(ctx, e.rdb, []string{e.keys.retry, e.keys.jobs}, now, batch).Int()
			if err != nil {
				if ctx.Err() == nil {
					e.redisDown("move due retries", err)
				}
				break
			}
			if moved < batch {
				break
			}
		}
	}
}

// hold takes stream entries just read or claimed, each holding a slot,
// whose idle time in the group was reset at the latest at at. An entry
// this engine holds already (read again after a failed read, or claimed
// while its delivery is slow) is skipped; a pending entry deleted from the
// stream is acknowledged; a job that can never be delivered gets its
// failed outcome at once; the others go to the scheduler, which parks
// those whose host group has no room in memory: their slots are given
// back, and they stay pending, held here by id. A job the scheduler will
// park is parked without being parsed, when its group can be read from its
// URL alone (quickGroup): it is parsed when it is read back.
func (e *Engine) hold(ctx context.Context, msgs []redis.XMessage, pending bool, at time.Time) {
	// parse reads a job in full; a bad one gets its failed outcome (nil).
	parse := func(msg redis.XMessage) *heldJob {
		t := newTask(msg)
		if t.bad != nil {
			e.refuse(t)
			return nil
		}
		return &heldJob{task: t, group: hostGroupOf(t.to.hostname), touched: at}
	}
	type entry struct {
		msg redis.XMessage
		job *heldJob // nil until parsed
	}
	entries := make([]entry, 0, len(msgs))
	groups := make([]string, 0, len(msgs))
	for _, msg := range msgs {
		if !e.held.add(msg.ID) {
			e.release(1)
			continue
		}
		if pending && len(msg.Values) == 0 {
			// A pending entry whose stream entry was deleted: nothing to deliver.
			e.ackDeleted(ctx, msg.ID)
			e.settle(msg.ID)
			continue
		}
		group, ok := quickGroup(msg)
		var j *heldJob
		if !ok {
			if j = parse(msg); j == nil {
				continue
			}
			group = j.group
		}
		entries = append(entries, entry{msg, j})
		groups = append(groups, group)
	}
	if len(entries) == 0 {
		return
	}
	var jobs []*heldJob
	var parked []parkedJob
	for i, park := range e.sched.plan(groups) {
		j := entries[i].job
		switch {
		case park:
			parked = append(parked, parkedJob{id: entries[i].msg.ID, group: groups[i], touched: at})
		case j != nil:
			jobs = append(jobs, j)
		default:
			if j = parse(entries[i].msg); j != nil {
				jobs = append(jobs, j)
			}
		}
	}
	// Those planned for memory first: a group's jobs parked now come after
	// them in the stream.
	if len(jobs) > 0 {
		e.release(len(e.sched.add(jobs)))
	}
	if len(parked) > 0 {
		e.sched.park(parked)
		e.release(len(parked))
	}
}

// worker works the jobs the scheduler hands it until the scheduler is
// closed (the engine is stopping). Work it has started runs on workCtx. A
// panic while it handles a job ends that job, not the worker (see work).
//
// It does not start a job whose idle time in the group was last reset
// longer ago than the visibility timeout leaves room for an attempt
// (which happens only when Redis could not be reached to reset it): other
// engines could claim it while the attempt runs and deliver it too. It
// stays pending, to be claimed once the visibility timeout has passed, by
// this engine or another.
func (e *Engine) worker(workCtx context.Context) {
	var sig signer
	latest := e.latestStart()
	for {
		j := e.sched.next()
		if j == nil {
			return
		}
		if latest > 0 && time.Since(j.touched) > latest {
			e.sched.done(j.group, 0)
			e.metrics.expired.Inc()
			e.log.Warn("a job waited too long for a worker; it stays pending and will be claimed again",
				"entry", j.task.entryID, "waited", time.Since(j.touched).Round(time.Millisecond))
			e.settle(j.task.entryID)
			continue
		}
		e.work(workCtx, j, &sig)
	}
}

// latestStart is how long after its idle time was reset a job may still
// be started: its attempt must end before the visibility timeout. Validate
// keeps the visibility timeout above the request timeout; a Config made in
// code without it gets no such check (0) rather than one that would leave
// every job.
func (e *Engine) latestStart() time.Duration {
	return max(e.cfg.VisibilityTimeout-e.cfg.RequestTimeout, 0)
}

// settle ends this engine's hold on an entry held in memory: its outcome
// is written, or it is left pending for a later read or claim.
func (e *Engine) settle(id string) {
	e.held.remove(id)
	e.release(1)
}

func (e *Engine) ackDeleted(ctx context.Context, id string) {
	if err := e.rdb.XAck(ctx, e.keys.jobs, e.keys.group, id).Err(); err != nil {
		e.log.Warn("acknowledge deleted entry", "entry", id, "error", err)
	}
}

// acquire blocks until at least one worker slot is free, then takes up to
// limit slots, waiting up to gatherWait for want of them. It returns 0
// only when ctx is done.
func (e *Engine) acquire(ctx context.Context, want, limit int) int {
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1 + e.tryAcquire(limit-1)
	if n >= want {
		return n
	}
	timer := time.NewTimer(gatherWait)
	defer timer.Stop()
	for n < want {
		select {
		case e.slots <- struct{}{}:
			n++
		case <-timer.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
	return n
}

// tryAcquire takes up to limit free slots without waiting.
func (e *Engine) tryAcquire(limit int) int {
	n := 0
	for n < limit {
		select {
		case e.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (e *Engine) release(n int) {
	for range n {
		<-e.slots
	}
}

// redisDown notes a failed Redis call: the engine keeps going and retries,
// and reports not-ready until a call succeeds.
func (e *Engine) redisDown(what string, err error) {
	if e.redisOK.Swap(false) {
		e.log.Error("redis unavailable, retrying", "op", what, "error", err)
	} else {
		e.log.Debug("redis still unavailable", "op", what, "error", err)
	}
}

// Handler serves /metrics, /healthz and /readyz.
func (e *Engine) Handler() http.Handler { return e.metrics.handler() }

// serveOps starts the metrics server when an address is configured. The
// returned function stops it.
func (e *Engine) serveOps() (stop func(), err error) {
	if e.cfg.MetricsAddress == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", e.cfg.MetricsAddress)
	if err != nil {
		return nil, fmt.Errorf("metricsAddress %s: %w", e.cfg.MetricsAddress, err)
	}
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("metrics server stopped", "error", err)
		}
	}()
	e.log.Info("metrics server listening", "address", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// sleep waits for d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff waits longer after each consecutive failure, up to a few seconds.
type backoff struct{ n int }

func (b *backoff) reset() { b.n = 0 }

// wait sleeps for the next backoff step; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := min(100*time.Millisecond<<min(b.n, 6), 5*time.Second)
	b.n++
	return sleep(ctx, jitter(d))
}
