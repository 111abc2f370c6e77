// Package soak runs the engine under a steady flow of jobs, or against a
// large backlog, through a flapping receiver on loopback and a redis-server
// of its own, and counts what came through: delivered, duplicates, lost,
// and the process's memory. cmd/sendhooks-soak is its command line.
package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/internal/redisserver"
)

// ErrLost reports that a job ended without a final status, or with two.
var ErrLost = errors.New("jobs lost or with two final statuses")

// idPrefix starts every webhook id the soak sends; the job number follows.
const idPrefix = "soak-"

// Options says what a soak run does.
type Options struct {
	Duration  time.Duration // how long jobs are produced (flow mode)
	Rate      int           // jobs per second (flow mode)
	Backlog   int           // >0: preload this many jobs, then drain them (backlog mode)
	Report    time.Duration // interval between report lines
	FailRate  float64       // share of requests the receiver fails with 500
	DownEvery time.Duration // the receiver goes down this often (0: never)
	DownFor   time.Duration // for this long
	Drain     time.Duration // bound on the wait for the last final statuses
	Out       io.Writer     // report lines
	Log       *slog.Logger  // engine log
}

// Check reports the first option a run cannot work with.
func (o Options) Check() error {
	switch {
	case o.Backlog < 0:
		return fmt.Errorf("-backlog must not be negative, got %d", o.Backlog)
	case o.Backlog == 0 && (o.Rate <= 0 || o.Duration <= 0):
		return fmt.Errorf("-rate and -duration must be positive, got %d and %v", o.Rate, o.Duration)
	case o.Report <= 0:
		return fmt.Errorf("-report must be positive, got %v", o.Report)
	case o.FailRate < 0 || o.FailRate >= 1:
		return fmt.Errorf("-fail must be from 0 up to (not including) 1, got %v", o.FailRate)
	case o.DownEvery > 0 && (o.DownFor <= 0 || o.DownFor >= o.DownEvery):
		return fmt.Errorf("-down-for must be positive and shorter than -down-every, got %v and %v", o.DownFor, o.DownEvery)
	}
	return nil
}

// Result is what a run came to.
type Result struct {
	Sent, Delivered, Duplicates int
	Finals, Failed, DoubleFinal int
	Lost                        int // sent minus jobs with a final status
	MaxRSS                      int64
}

// tracker follows the status stream and keeps one bit per job that has a
// final status, counting jobs that get a second one.
type tracker struct {
	mu          sync.Mutex
	final       bitset
	finals      int
	failed      int
	doubleFinal int
}

func (tr *tracker) note(n int, status sendhooks.Status) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.final.add(n) {
		tr.doubleFinal++
		return
	}
	tr.finals++
	if status == sendhooks.StatusFailed {
		tr.failed++
	}
}

func (tr *tracker) counts() (finals, failed, double int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.finals, tr.failed, tr.doubleFinal
}

// follow reads the status stream from the start until ctx is done.
func (tr *tracker) follow(ctx context.Context, rdb *redis.Client, stream string) {
	last := "0"
	for ctx.Err() == nil {
		streams, err := rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{stream, last}, Count: 1000, Block: 200 * time.Millisecond,
		}).Result()
		if err != nil {
			if err != redis.Nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		for _, m := range streams[0].Messages {
			last = m.ID
			var ev struct {
				WebhookID string           `json:"webhookId"`
				Status    sendhooks.Status `json:"status"`
			}
			raw, _ := m.Values[sendhooks.StreamField].(string)
			if json.Unmarshal([]byte(raw), &ev) != nil || !ev.Status.Final() {
				continue
			}
			if n, ok := jobNumber(ev.WebhookID); ok {
				tr.note(n, ev.Status)
			}
		}
	}
}

// Run starts Redis, the receiver and an in-process engine, runs the flow or
// the backlog, waits (bounded) for every job's final status, and returns
// the figures. It returns ErrLost, with the Result, if a job has no final
// status or more than one.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	srv, err := redisserver.Start(ctx)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	rc, err := newReceiver(o.FailRate)
	if err != nil {
		return res, err
	}
	defer rc.close()

	cfg := engine.Default()
	cfg.Redis.Address = srv.Addr()
	cfg.ConsumerName = "soak"
	cfg.AllowPrivateNetworks = true // the receiver is on loopback
	cfg.RequestTimeout = 2 * time.Second
	cfg.VisibilityTimeout = 10 * time.Second
	// Long enough in total (about 16 s) to outlast a receiver outage.
	cfg.RetrySchedule = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	if cfg, err = cfg.Resolve(); err != nil {
		return res, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 8})
	defer rdb.Close()

	p := producer{rdb: rdb, stream: cfg.JobStream, url: rc.URL()}
	if o.Backlog > 0 {
		start := time.Now()
		if err := p.send(ctx, o.Backlog); err != nil {
			return res, err
		}
		debug.FreeOSMemory() // the baseline excludes the preload's buffers
		fmt.Fprintf(o.Out, "preloaded %d jobs in %v; RSS before the engine starts: %s\n",
			o.Backlog, time.Since(start).Round(time.Millisecond), mib(rss()))
	}

	engRDB, err := engine.NewRedisClient(cfg)
	if err != nil {
		return res, err
	}
	defer engRDB.Close()
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engDone := make(chan error, 1)
	go func() { engDone <- engine.New(cfg, engRDB, o.Log).Run(engCtx) }()
	defer func() {
		stopEngine()
		<-engDone
	}()

	var tr tracker
	trCtx, stopTracker := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer bg.Wait()
	defer stopTracker()
	bg.Go(func() { tr.follow(trCtx, rdb, cfg.StatusStream) })

	start := time.Now()
	report := func() {
		res.fill(&p, rc, &tr)
		r := rss()
		res.MaxRSS = max(res.MaxRSS, r)
		fmt.Fprintf(o.Out, "elapsed=%-6v sent=%d delivered=%d duplicates=%d finals=%d failed=%d pending=%d rss=%s\n",
			time.Since(start).Round(time.Second), res.Sent, res.Delivered, res.Duplicates,
			res.Finals, res.Failed, res.Sent-res.Finals, mib(r))
	}
	ticker := time.NewTicker(o.Report)
	defer ticker.Stop()

	if o.Backlog == 0 {
		if err := p.flow(ctx, o, rc, ticker.C, report); err != nil {
			return res, err
		}
		_ = rc.setDown(false)
	}

	// Drain: wait, bounded, for every job's final status.
	drainEnd := time.Now().Add(o.Drain)
	for {
		res.fill(&p, rc, &tr)
		if res.Finals >= res.Sent || time.Now().After(drainEnd) || ctx.Err() != nil {
			break
		}
		select {
		case <-ticker.C:
			report()
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	report()
	res.fill(&p, rc, &tr)
	res.Lost = res.Sent - res.Finals
	fmt.Fprintf(o.Out, "done: sent=%d delivered=%d duplicates=%d finals=%d failed=%d double-finals=%d lost=%d max-rss=%s (engine in-process: process RSS)\n",
		res.Sent, res.Delivered, res.Duplicates, res.Finals, res.Failed, res.DoubleFinal, res.Lost, mib(res.MaxRSS))
	if res.Lost != 0 || res.DoubleFinal != 0 {
		return res, ErrLost
	}
	return res, nil
}

// fill copies the current counts into r.
func (r *Result) fill(p *producer, rc *receiver, tr *tracker) {
	r.Sent = p.sentCount()
	r.Delivered, r.Duplicates = rc.counts()
	r.Finals, r.Failed, r.DoubleFinal = tr.counts()
}

// producer writes soak jobs into the jobs stream, numbering them.
type producer struct {
	rdb    *redis.Client
	stream string
	url    string
	mu     sync.Mutex
	sent   int
}

func (p *producer) sentCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// send writes n more jobs, pipelined in chunks.
func (p *producer) send(ctx context.Context, n int) error {
	const chunk = 5000
	for n > 0 {
		k := min(n, chunk)
		first := p.sentCount()
		pipe := p.rdb.Pipeline()
		for i := range k {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.stream,
				Values: []any{sendhooks.StreamField, p.job(first + i)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("XADD jobs: %w", err)
		}
		p.mu.Lock()
		p.sent += k
		p.mu.Unlock()
		n -= k
	}
	return nil
}

func (p *producer) job(n int) string {
	id := idPrefix + strconv.Itoa(n)
	return `{"url":"` + p.url + `","webhookId":"` + id + `","messageId":"m-` + id +
		`","data":{"n":` + strconv.Itoa(n) + `,"amount":"100.00"},"secretHash":"soak"}`
}

// flow keeps o.Rate jobs a second flowing for o.Duration, takes the
// receiver down on schedule, and calls report on every tick of reports.
func (p *producer) flow(ctx context.Context, o Options, rc *receiver, reports <-chan time.Time, report func()) error {
	start := time.Now()
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return nil
		case <-reports:
			report()
			continue
		case now = <-pace.C:
		}
		elapsed := min(now.Sub(start), o.Duration)
		if o.DownEvery > 0 {
			// Down for DownFor at the end of every DownEvery period.
			if err := rc.setDown(elapsed%o.DownEvery >= o.DownEvery-o.DownFor); err != nil {
				return fmt.Errorf("receiver: %w", err)
			}
		}
		due := int(elapsed.Seconds() * float64(o.Rate))
		if n := due - p.sentCount(); n > 0 {
			if err := p.send(ctx, n); err != nil {
				return err
			}
		}
		if elapsed == o.Duration {
			return nil
		}
	}
}

// rss is this process's resident set size in bytes, from /proc/self/status
// (VmRSS); -1 if it cannot be read. The engine runs in this process, so
// this is the engine's RSS plus the soak's own small bookkeeping.
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
