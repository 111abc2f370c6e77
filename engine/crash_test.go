package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// engineBinary builds cmd/sendhooks once per test run, so crash tests can
// kill a real engine process.
func engineBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sendhooks-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "sendhooks")
		out, err := exec.Command("go", "build", "-o", binaryPath, "../cmd/sendhooks").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build ../cmd/sendhooks: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// startProcess runs the engine binary on a config file written from cfg.
func startProcess(t *testing.T, cfg Config) *exec.Cmd {
	t.Helper()
	schedule := make([]string, len(cfg.RetrySchedule))
	for i, d := range cfg.RetrySchedule {
		schedule[i] = d.String()
	}
	file := map[string]any{
		"redisAddress":         cfg.Redis.Address,
		"redisStreamName":      cfg.JobStream,
		"numWorkers":           cfg.NumWorkers,
		"maxPerHost":           cfg.MaxPerHost,
		"consumerName":         cfg.ConsumerName,
		"allowPrivateNetworks": true,
		"requestTimeout":       cfg.RequestTimeout.String(),
		"visibilityTimeout":    cfg.VisibilityTimeout.String(),
		"retrySchedule":        schedule,
	}
	raw, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(engineBinary(t), "-config", path)
	cmd.Stderr = testWriter{t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func TestKill9WhileDeliveringLosesNothing(t *testing.T) {
	t.Parallel()
	b, g, rc, cfg := setupGated(t)
	cfg.RequestTimeout = 2 * time.Second
	cfg.VisibilityTimeout = 3 * time.Second
	const n = 12
	ids := b.addJobs(t, rc.URL, "crash", n)

	first := startProcess(t, cfg)
	waitFor(t, 20*time.Second, "4 requests in flight", func() bool { return g.held.Load() == 4 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	g.release()

	second := startProcess(t, cfg)
	finals := b.finals(t, n)
	for _, id := range ids {
		if finals[id].Status != sendhooks.StatusSuccess {
			t.Errorf("job %s: %+v", id, finals[id])
		}
	}
	counts := perWebhook(rc)
	if len(counts) != n {
		t.Errorf("receiver saw %d distinct webhooks, want %d", len(counts), n)
	}
	t.Logf("requests per webhook (duplicates of the killed in-flight ones are allowed): %v", counts)
	b.waitAcked(t)

	// SIGTERM: a graceful stop, exit status 0.
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("engine exited after SIGTERM with %v, want status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("engine did not exit within 20s of SIGTERM")
	}
}

func TestSIGTERMUnderLoadFinishesInFlightAndRedeliversNothing(t *testing.T) {
	t.Parallel()
	b, g, rc, cfg := setupGated(t)
	const n = 20
	b.addJobs(t, rc.URL, "term", n)
	first := startProcess(t, cfg)
	waitFor(t, 20*time.Second, "4 requests in flight", func() bool { return g.held.Load() == 4 })
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	g.release() // the in-flight requests may now finish, within shutdownTimeout
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("engine exited after SIGTERM with %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("engine did not exit within 30s of SIGTERM")
	}
	if got := countFinal(b.statuses(t)); got < 4 {
		t.Fatalf("after SIGTERM, %d jobs have a final status; the 4 in flight must have finished", got)
	}

	startProcess(t, cfg)
	b.finals(t, n)
	b.waitAcked(t)
	for id, count := range perWebhook(rc) {
		if count != 1 {
			t.Errorf("%s delivered %d times: a graceful stop must not redeliver what it acknowledged", id, count)
		}
	}
}

// TestKill9WhileTrimmingLosesNothing kills a real engine process twice
// while jobs flow and it trims the jobs stream every second (the trim
// users get: approximate, from the engine's own loop), each time once it
// has trimmed more since its start. Every job is delivered and ends with
// exactly one final status, and the stream ends holding at most one node
// of acknowledged entries.
func TestKill9WhileTrimmingLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A receiver slow enough that the flow outlasts a few trims.
	rc := newReceiver(t, answerAfter(20*time.Millisecond))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 4, 4
	cfg.RequestTimeout = 2 * time.Second
	cfg.VisibilityTimeout = 3 * time.Second
	const n = 1000
	ctx := context.Background()
	pipe := b.rdb.Pipeline()
	adds := make([]*redis.StringCmd, n)
	for i := range n {
		adds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: cfg.JobStream,
			Values: []any{sendhooks.StreamField, job(rc.URL, fmt.Sprintf("trim-%d", i))}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, a := range adds {
		index[a.Val()] = i
	}
	// trimmedUpTo is how many of the jobs, oldest first, are gone from
	// the stream.
	trimmedUpTo := func() int {
		first, err := b.rdb.XRangeN(ctx, cfg.JobStream, "-", "+", 1).Result()
		switch {
		case err != nil:
			t.Fatalf("XRANGE jobs: %v", err)
		case len(first) == 0:
			return n
		}
		return index[first[0].ID]
	}

	trimmed := 0
	for round := 1; round <= 2; round++ {
		proc := startProcess(t, cfg)
		waitFor(t, 30*time.Second, fmt.Sprintf("engine %d to trim the jobs stream", round), func() bool {
			return trimmedUpTo() > trimmed
		})
		if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		trimmed = trimmedUpTo()
		if got := len(perWebhook(rc)); got >= n {
			t.Fatalf("all %d jobs were delivered before kill %d: the flow is too short to kill the engine mid-flow", got, round)
		}
		t.Logf("kill %d: %d jobs trimmed, %d delivered", round, trimmed, len(perWebhook(rc)))
	}

	startProcess(t, cfg)
	finals := b.finals(t, n)
	for id := range index {
		if finals[id].Status != sendhooks.StatusSuccess {
			t.Errorf("job %s: %+v", id, finals[id])
		}
	}
	if got := len(perWebhook(rc)); got != n {
		t.Errorf("receiver saw %d distinct webhooks, want %d", got, n)
	}
	b.waitAcked(t)
	// An approximate trim keeps at most the node holding the last entry,
	// and Redis's nodes hold at most 100 entries.
	waitFor(t, 20*time.Second, "the jobs stream trimmed to its last node", func() bool {
		return trimmedUpTo() >= n-100
	})
}

// TestKill9WhileJobsWaitForTheirHost kills a real engine process while
// most jobs wait with it for their host: two receiver hosts hold every
// request, so each has its share of the workers in flight and the rest of
// its jobs wait in memory or parked, all pending and unacknowledged. After
// a restart every job is delivered and each gets exactly one final status.
func TestKill9WhileJobsWaitForTheirHost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ga, gb := newGate(t), newGate(t)
	slowA := newReceiver(t, ga.respond)
	slowB := newReceiverAt(t, "127.0.0.2", gb.respond)
	fast := newReceiverAt(t, "127.0.0.3", answer(http.StatusOK))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 4, 4
	// The slow hosts' requests are held until after the kill: the request
	// timeout must outlast the wait below, however loaded the machine, or
	// they time out and are retried (the restarted engine takes up its
	// own pending jobs at once, so the visibility timeout adds no wait).
	cfg.RequestTimeout = time.Minute
	cfg.VisibilityTimeout = 2 * time.Minute
	const each = 20
	b.addMixed(t, each, slowA.URL, slowB.URL, fast.URL)

	first := startProcess(t, cfg)
	// The fast host's jobs are delivered; the slow hosts' wait, read (the
	// fast one's left room to read past them) and pending.
	waitFor(t, 45*time.Second, "the fast jobs delivered and the slow ones read", func() bool {
		groups, err := b.rdb.XInfoGroups(context.Background(), cfg.JobStream).Result()
		return len(perWebhook(fast)) == each && ga.held.Load() > 0 && gb.held.Load() > 0 &&
			err == nil && len(groups) == 1 && groups[0].EntriesRead == 3*each && groups[0].Pending == 2*each
	})
	inFlight := int(ga.held.Load() + gb.held.Load())
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	ga.release()
	gb.release()

	startProcess(t, cfg)
	finals := b.finals(t, 3*each) // fails on a second final status for any job
	for id, ev := range finals {
		if ev.Status != sendhooks.StatusSuccess {
			t.Errorf("job %s: %+v", id, ev)
		}
	}
	dup := 0
	for _, rc := range []*receiver{slowA, slowB, fast} {
		counts := perWebhook(rc)
		if len(counts) != each {
			t.Errorf("a receiver saw %d distinct webhooks, want %d", len(counts), each)
		}
		for _, n := range counts {
			dup += n - 1
		}
	}
	if dup > inFlight {
		t.Errorf("%d requests repeated, more than the %d in flight at the kill", dup, inFlight)
	}
	b.waitAcked(t)
	if got := b.entriesAdded(t); got != 3*each {
		t.Errorf("the jobs stream got %d entries, want the %d jobs written and no more", got, 3*each)
	}
}
