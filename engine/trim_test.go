package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// trimOften makes an engine trim its streams every 20 ms and exactly, so
// that tests can wait for exact lengths; users get approximate trims
// every second.
func trimOften(e *Engine) { e.upkeep = upkeep{every: 20 * time.Millisecond, exact: true} }

// streamLen is the length of a stream, failing the test on an error.
func streamLen(t *testing.T, rdb *redis.Client, stream string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		t.Fatalf("XLEN %s: %v", stream, err)
	}
	return n
}

// waitLen waits until a stream holds exactly want entries.
func waitLen(t *testing.T, rdb *redis.Client, stream string, want int64) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%s to hold %d entries", stream, want), func() bool {
		n, err := rdb.XLen(context.Background(), stream).Result()
		return err == nil && n == want
	})
}

// checkTrimRules runs the trim script through the cases that decide what
// it may remove, on any Redis-protocol server.
func checkTrimRules(t *testing.T, rdb *redis.Client) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	add := func(stream string, n int) []string {
		t.Helper()
		ids := make([]string, n)
		for i := range ids {
			id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"data", i}}).Result()
			must(err)
			ids[i] = id
		}
		return ids
	}
	read := func(stream, group string, n int64) []string {
		t.Helper()
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c",
			Streams: []string{stream, ">"}, Count: n, Block: -1}).Result()
		must(err)
		var ids []string
		for _, m := range res[0].Messages {
			ids = append(ids, m.ID)
		}
		if int64(len(ids)) != n {
			t.Fatalf("read %d entries of %s as %s, want %d", len(ids), stream, group, n)
		}
		return ids
	}
	ack := func(stream, group string, ids ...string) {
		t.Helper()
		must(rdb.XAck(ctx, stream, group, ids...).Err())
	}
	// step trims once, exactly, and checks what went and what is left:
	// first is the oldest entry that must remain ("" for none).
	step := func(what string, target trimTarget, wantTrimmed, wantLen int64, first string) {
		t.Helper()
		n, err := trimStream(ctx, rdb, target, true)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		left, err := rdb.XRange(ctx, target.stream, "-", "+").Result()
		must(err)
		if n != wantTrimmed || int64(len(left)) != wantLen {
			t.Fatalf("%s: trimmed %d, %d left; want %d trimmed, %d left", what, n, len(left), wantTrimmed, wantLen)
		}
		if first != "" && left[0].ID != first {
			t.Fatalf("%s: oldest entry left is %s, want %s", what, left[0].ID, first)
		}
	}

	jobs := trimTarget{stream: "rules-jobs", byGroups: true}
	ids := add(jobs.stream, 10)
	must(rdb.XGroupCreate(ctx, jobs.stream, "a", "0").Err())
	step("a group created at 0 has read nothing", jobs, 0, 10, ids[0])
	read(jobs.stream, "a", 4)
	ack(jobs.stream, "a", ids[0], ids[1])
	step("below the oldest pending entry", jobs, 2, 8, ids[2])
	ack(jobs.stream, "a", ids[2], ids[3])
	step("nothing pending: below the first unread entry", jobs, 2, 6, ids[4])
	must(rdb.XGroupCreate(ctx, jobs.stream, "b", "0").Err())
	step("a second group that has read nothing", jobs, 0, 6, ids[4])
	read(jobs.stream, "b", 6)
	ack(jobs.stream, "b", ids[4:]...)
	step("one group done, the other has not read", jobs, 0, 6, ids[4])
	read(jobs.stream, "a", 6)
	ack(jobs.stream, "a", slices.Delete(slices.Clone(ids[4:]), 3, 4)...)
	step("one entry still pending with one group", jobs, 3, 3, ids[7])
	ack(jobs.stream, "a", ids[7])
	step("everything read and acknowledged", jobs, 3, 0, "")
	later := add(jobs.stream, 1)
	step("a new entry no group has read", jobs, 0, 1, later[0])
	step("no cap while groups read", trimTarget{stream: jobs.stream, byGroups: true, maxLen: 0}, 0, 1, later[0])

	status := trimTarget{stream: "rules-status", byGroups: true, maxLen: 5}
	ids = add(status.stream, 20)
	step("no group: capped", status, 15, 5, ids[15])
	step("no group, no cap", trimTarget{stream: status.stream, byGroups: true}, 0, 5, ids[15])

	dead := trimTarget{stream: "rules-dead", maxLen: 3}
	ids = add(dead.stream, 8)
	must(rdb.XGroupCreate(ctx, dead.stream, "replay", "0").Err())
	step("capped whatever its groups have read", dead, 5, 3, ids[5])

	// The id after the largest sequence number of a millisecond is the
	// next millisecond's first.
	edge := trimTarget{stream: "rules-edge", byGroups: true}
	for _, id := range []string{"5-18446744073709551615", "6-0"} {
		must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: edge.stream, ID: id, Values: []any{"data", id}}).Err())
	}
	must(rdb.XGroupCreate(ctx, edge.stream, "e", "0").Err())
	ack(edge.stream, "e", read(edge.stream, "e", 1)...)
	step("read up to the last id of a millisecond", edge, 1, 1, "6-0")

	must(rdb.Set(ctx, "rules-string", "x", 0).Err())
	for _, key := range []string{"rules-string", "rules-missing"} {
		n, err := trimStream(ctx, rdb, trimTarget{stream: key, byGroups: true, maxLen: 1}, false)
		if err != nil || n != 0 {
			t.Errorf("trim %s: %d, %v; want it left alone", key, n, err)
		}
	}
	if s, _ := rdb.Get(ctx, "rules-string").Result(); s != "x" {
		t.Errorf("rules-string is now %q", s)
	}
}

func TestTrimRulesOnRedis(t *testing.T) {
	t.Parallel()
	checkTrimRules(t, redistest.Start(t).Client(t))
}

// TestTrimRulesOnMiniredis runs the same rules on the embedded Redis of
// the dev stack: it has to serve every command the script uses.
func TestTrimRulesOnMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	checkTrimRules(t, rdb)
}

// TestTrimApproximateByDefault checks the trim users get: approximate,
// so Redis frees whole stream nodes and keeps at most one node more than
// the bound asks, but never an entry a group still needs.
func TestTrimApproximateByDefault(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	const stream, n = "approx", 1000
	var ids []string
	for i := range n {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"data", i}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rdb.XGroupCreate(ctx, stream, "g", ids[699]).Err(); err != nil {
		t.Fatal(err)
	}
	e := New(resolvedDefault(t), rdb, testLogger(t))
	if e.upkeep != (upkeep{every: trimEvery}) {
		t.Fatalf("default upkeep %+v, want approximate trims every %v", e.upkeep, trimEvery)
	}
	trimmed, err := trimStream(ctx, rdb, trimTarget{stream: stream, byGroups: true}, e.upkeep.exact)
	if err != nil {
		t.Fatal(err)
	}
	left, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Redis's default node holds up to 100 entries: at most the node
	// holding the bound is kept whole.
	if trimmed < 600 || trimmed > 700 || int64(len(left)) != n-trimmed {
		t.Fatalf("approximate trim removed %d and left %d; want 600 to 700 removed, the rest left", trimmed, len(left))
	}
	if !slices.ContainsFunc(left, func(m redis.XMessage) bool { return m.ID == ids[700] }) {
		t.Fatalf("the first unread entry %s was trimmed", ids[700])
	}
}

// TestTrimJobsStreamKeepsOnlyWhatIsPending runs jobs through an engine
// while their requests are held: read or not, nothing is trimmed; once
// they are delivered and acknowledged, the jobs stream is empty.
func TestTrimJobsStreamKeepsOnlyWhatIsPending(t *testing.T) {
	t.Parallel()
	b, g, rc, cfg := setupGated(t)
	const n = 12 // 4 in flight, 4 read ahead, 4 unread
	b.addJobs(t, rc.URL, "kept", n)
	e, _ := b.startTuned(t, cfg, trimOften)
	waitFor(t, 20*time.Second, "4 requests in flight", func() bool { return g.held.Load() == 4 })
	waitFor(t, 10*time.Second, "8 jobs pending", func() bool { return b.pendingCount(t) == 8 })
	// Trims made now, by the engine or here, find nothing to remove.
	if got, err := trimStream(context.Background(), b.rdb, trimTarget{stream: cfg.JobStream, byGroups: true}, true); err != nil || got != 0 {
		t.Fatalf("trim with nothing acknowledged: %d, %v; want 0", got, err)
	}
	if got := streamLen(t, b.rdb, cfg.JobStream); got != n {
		t.Fatalf("jobs stream holds %d entries with none acknowledged, want %d", got, n)
	}
	g.release()
	finals := b.finals(t, n)
	for id, ev := range finals {
		if ev.Status != sendhooks.StatusSuccess {
			t.Errorf("job %s: %+v", id, ev)
		}
	}
	b.waitAcked(t)
	waitLen(t, b.rdb, cfg.JobStream, 0)
	// The count is added once the trim script has answered, just after the
	// stream is seen empty.
	trimmed := func() float64 { return testutil.ToFloat64(e.metrics.trimmedBy[cfg.JobStream]) }
	waitFor(t, 5*time.Second, fmt.Sprintf("%d entries counted as trimmed", n), func() bool { return trimmed() >= n })
	if got := trimmed(); got != n {
		t.Errorf("trimmed from the jobs stream: %v, want %d", got, n)
	}
	// No group reads the status stream and it is far below its cap.
	if got := streamLen(t, b.rdb, cfg.StatusStream); got != n {
		t.Errorf("status stream holds %d events, want %d", got, n)
	}
}

// TestTrimStatusStreamKeepsAnotherGroupsUnreadEvents has another
// application read the status stream through its own consumer group: the
// engine removes none of the events that group has not read and
// acknowledged, and removes them once it has.
func TestTrimStatusStreamKeepsAnotherGroupsUnreadEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := b.rdb.XGroupCreateMkStream(ctx, b.cfg.StatusStream, "audit", "0").Err(); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, answer(http.StatusOK))
	const n = 20
	b.addJobs(t, rc.URL, "audited", n)
	cfg := b.cfg
	cfg.StatusStreamMaxLen = 5 // a group reads the stream: the cap does not apply
	b.startTuned(t, cfg, trimOften)
	b.finals(t, n)
	b.waitAcked(t)
	// The engine trims: the jobs stream empties, the status stream does not.
	waitLen(t, b.rdb, cfg.JobStream, 0)
	status := trimTarget{stream: cfg.StatusStream, byGroups: true, maxLen: cfg.StatusStreamMaxLen}
	if got, err := trimStream(ctx, b.rdb, status, true); err != nil || got != 0 {
		t.Fatalf("trim of the unread status stream: %d, %v; want 0", got, err)
	}
	if got := streamLen(t, b.rdb, cfg.StatusStream); got != n {
		t.Fatalf("status stream holds %d events, want all %d: the audit group has read none", got, n)
	}

	readAudit := func(count int64) []redis.XMessage {
		t.Helper()
		res, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "audit", Consumer: "auditor",
			Streams: []string{cfg.StatusStream, ">"}, Count: count, Block: -1}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Messages
	}
	first := readAudit(n / 2)
	second := readAudit(n)
	got := map[string]bool{}
	for _, m := range append(first, second...) {
		ev := decodeEvent(t, m)
		if !ev.Status.Final() || got[ev.WebhookID] {
			t.Errorf("audit read %+v", ev)
		}
		got[ev.WebhookID] = true
	}
	if len(got) != n {
		t.Fatalf("audit group read %d final events, want %d", len(got), n)
	}
	if err := b.rdb.XAck(ctx, cfg.StatusStream, "audit", entryIDs(first)...).Err(); err != nil {
		t.Fatal(err)
	}
	waitLen(t, b.rdb, cfg.StatusStream, n/2)
	if got, err := trimStream(ctx, b.rdb, status, true); err != nil || got != 0 {
		t.Fatalf("trim with the second half pending: %d, %v; want 0", got, err)
	}
	if err := b.rdb.XAck(ctx, cfg.StatusStream, "audit", entryIDs(second)...).Err(); err != nil {
		t.Fatal(err)
	}
	waitLen(t, b.rdb, cfg.StatusStream, 0)
}

func decodeEvent(t *testing.T, m redis.XMessage) sendhooks.StatusEvent {
	t.Helper()
	raw, _ := m.Values[sendhooks.StreamField].(string)
	var ev sendhooks.StatusEvent
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatalf("status event %s: %v", m.ID, err)
	}
	return ev
}

func entryIDs(msgs []redis.XMessage) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// TestTrimStatusStreamCappedWithoutGroups: with no group on the status
// stream, it keeps the newest statusStreamMaxLen events.
func TestTrimStatusStreamCappedWithoutGroups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.StatusStreamMaxLen = 10
	e, _ := b.startTuned(t, cfg, trimOften)
	const n = 30
	b.addJobs(t, rc.URL, "capped", n)
	waitFor(t, 20*time.Second, "every job delivered", func() bool { return len(rc.got()) == n })
	b.waitAcked(t)
	waitLen(t, b.rdb, cfg.StatusStream, 10)
	waitFor(t, 10*time.Second, "20 events counted as trimmed", func() bool {
		return testutil.ToFloat64(e.metrics.trimmedBy[cfg.StatusStream]) == n-10
	})
	for _, ev := range b.statuses(t) {
		if ev.Status != sendhooks.StatusSuccess {
			t.Errorf("kept %+v", ev)
		}
	}
	if got := len(perWebhook(rc)); got != n {
		t.Errorf("%d webhooks delivered, want %d", got, n)
	}
}

// TestTrimDeadLetterStreamCapped: the dead-letter stream keeps the newest
// deadLetterMaxLen dead letters.
func TestTrimDeadLetterStreamCapped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusInternalServerError))
	cfg := b.cfg
	cfg.RetrySchedule = []time.Duration{} // one attempt: every job dead-lettered at once
	cfg.DeadLetterMaxLen = 3
	e, _ := b.startTuned(t, cfg, trimOften)
	const n = 10
	b.addJobs(t, rc.URL, "dead", n)
	for id, ev := range b.finals(t, n) {
		if ev.Status != sendhooks.StatusFailed {
			t.Errorf("job %s: %+v", id, ev)
		}
	}
	dead := sendhooks.DeadLetterStream(cfg.JobStream)
	waitLen(t, b.rdb, dead, 3)
	waitFor(t, 10*time.Second, "7 dead letters counted as trimmed", func() bool {
		return testutil.ToFloat64(e.metrics.trimmedBy[dead]) == n-3
	})
}

// TestTrimOnMiniredis runs an engine on the embedded Redis of the dev
// stack and checks that it trims there too.
func TestTrimOnMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	b := &bundle{rdb: redis.NewClient(&redis.Options{Addr: m.Addr()}), cfg: testConfig(m.Addr())}
	t.Cleanup(func() { b.rdb.Close() })
	b.cfg.StatusStreamMaxLen = 4
	rc := newReceiver(t, answer(http.StatusOK))
	const n = 10
	b.addJobs(t, rc.URL, "mini", n)
	b.startTuned(t, b.cfg, trimOften)
	waitFor(t, 20*time.Second, "every job delivered", func() bool { return len(rc.got()) == n })
	b.waitAcked(t)
	waitLen(t, b.rdb, b.cfg.JobStream, 0)
	waitLen(t, b.rdb, b.cfg.StatusStream, 4)
}

// TestStreamMetrics checks the stream lengths and trimmed counts on
// /metrics.
func TestStreamMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.StatusStreamMaxLen = 2
	e, _ := b.startTuned(t, cfg, trimOften)
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)
	b.addJobs(t, rc.URL, "metered", 5)
	b.waitAcked(t)
	waitLen(t, b.rdb, cfg.JobStream, 0)
	waitLen(t, b.rdb, cfg.StatusStream, 2)
	var body string
	want := []string{
		`sendhooks_stream_length{stream="hooks"} 0`,
		`sendhooks_stream_length{stream="hooks-status"} 2`,
		`sendhooks_stream_length{stream="hooks-dead"} 0`,
		`sendhooks_stream_trimmed_entries_total{stream="hooks"} 5`,
		`sendhooks_stream_trimmed_entries_total{stream="hooks-status"} 3`,
		`sendhooks_stream_trimmed_entries_total{stream="hooks-dead"} 0`,
	}
	waitFor(t, 10*time.Second, "the stream metrics", func() bool {
		body = get(t, ops.URL+"/metrics", http.StatusOK)
		return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(body, w+"\n") })
	})
}
