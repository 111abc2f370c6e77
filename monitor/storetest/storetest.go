// Package storetest is the conformance suite of monitor.Store: every
// adapter runs it (monitor/sqlite against a real SQLite file, monitor/mongo
// against the embedded MongoDB-wire server) and must give the answers a
// brute-force reading of the same webhooks gives, for every query the API
// and the dashboard make.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// Open makes an empty store for one test; the suite calls Setup on it and
// the opener closes it when the test ends.
type Open func(t *testing.T) monitor.Store

// Options says what the server behind a store cannot do, and how the
// suite tunes the store.
type Options struct {
	// NotAtomic names a server whose conditional writes are not atomic
	// (the embedded FerretDB v1 reads, then writes): the checks of racing
	// writers are skipped on it, saying why.
	NotAtomic string
	// SetSearchWindow makes the store's search window (monitor.SearchWindow)
	// n hooks until the test ends, so that a check reaches its end with a
	// few hooks. The checks of the window need it.
	SetSearchWindow func(t *testing.T, n int)
}

// Run runs every check of the suite against stores made by open.
func Run(t *testing.T, open Open, opts Options) {
	racing := map[string]bool{"ConcurrentApplyConverges": true, "RetryMarks": true}
	for _, c := range []struct {
		name string
		fn   func(*testing.T, monitor.Store)
	}{
		{"ApplyIsIdempotentAndOrderProof", testApply},
		{"Get", testGet},
		{"ListOffsetPagesAndTotals", testListOffset},
		{"ListKeysetPages", testKeyset},
		{"Search", testSearch},
		{"TotalsAcrossHoursAndMinutes", testTotals},
		{"Stats", testStats},
		{"StatsCountFailuresPerReceiver", testStatsPerReceiver},
		{"Prune", testPrune},
		{"LimitsAreRefused", testLimits},
		{"ConcurrentApplyConverges", testConcurrentApply},
		{"RetryMarks", testRetryMarks},
		{"RefusesHooksOverTheLimits", testLimitsRefused},
		{"OldEngineEventsNewestWins", testOldEngineEvents},
		{"CollectStopsAtTheSearchWindow", func(t *testing.T, s monitor.Store) { testCollect(t, s, opts.SetSearchWindow) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if racing[c.name] && opts.NotAtomic != "" {
				t.Skipf("racing writers need atomic conditional writes, which %s lacks", opts.NotAtomic)
			}
			s := open(t)
			if err := s.Setup(ctx(t), 720*time.Hour); err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if err := s.Setup(ctx(t), 720*time.Hour); err != nil {
				t.Fatalf("Setup again: %v", err)
			}
			c.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// base is the suite's clock: every webhook is created around it.
var base = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Job describes one webhook as the suite writes it: its events are made
// from these fields.
type Job struct {
	StreamID, WebhookID, MessageID, URL string
	Created                             time.Time
	// Attempts are the attempts' outcomes in order; the last decides the
	// status (a retrying last attempt leaves the job retrying).
	Attempts []sendhooks.Status
	// Duration of every attempt, in milliseconds.
	DurationMs float64
}

// Events are the status events the engine writes for the job, in order.
func (j Job) Events() []monitor.Event {
	var out []monitor.Event
	for i, st := range j.Attempts {
		ev := sendhooks.StatusEvent{
			WebhookID: j.WebhookID, MessageID: j.MessageID, StreamID: j.StreamID, URL: j.URL,
			Status: st, Attempt: i + 1, NumberOfTries: i + 1, DurationMs: j.DurationMs,
			Created: sendhooks.Time{Time: j.Created}, AttemptedAt: sendhooks.Time{Time: j.Created.Add(time.Duration(i) * time.Second)},
			Job: fmt.Sprintf(`{"url":%q,"webhookId":%q,"data":{"order":%q}}`, j.URL, j.WebhookID, j.StreamID),
		}
		switch st {
		case sendhooks.StatusSuccess:
			ev.StatusCode = 200
			ev.Delivered = sendhooks.Time{Time: j.Created.Add(time.Duration(i)*time.Second + 100*time.Millisecond)}
		case sendhooks.StatusFailed:
			ev.StatusCode, ev.DeliveryError = 500, "receiver answered 500"
		case sendhooks.StatusRetrying:
			ev.StatusCode, ev.DeliveryError = 503, "receiver answered 503"
			ev.NextAttemptAt = sendhooks.Time{Time: j.Created.Add(time.Minute)}
		}
		out = append(out, monitor.Event{EntryID: fmt.Sprintf("%d-%d", j.Created.UnixMilli(), i), StatusEvent: ev})
	}
	return out
}

// Status is the job's status once all its events are in.
func (j Job) Status() sendhooks.Status { return j.Attempts[len(j.Attempts)-1] }

// fixture is the suite's standard set of webhooks: three hours of
// traffic with ties on created, three receivers, every status, ids that
// are substrings of one another.
func fixture() []Job {
	urls := []string{"http://127.0.0.1:9001/Orders", "http://127.0.0.1:9002/invoices", "http://localhost:9003/hooks/Shipping"}
	var jobs []Job
	for i := range 60 {
		created := base.Add(time.Duration(i*3)*time.Minute + time.Duration(i%7)*time.Second)
		if i%10 == 9 {
			created = jobs[len(jobs)-1].Created // a tie on created, broken by id
		}
		attempts := []sendhooks.Status{sendhooks.StatusSuccess}
		switch i % 5 {
		case 1:
			attempts = []sendhooks.Status{sendhooks.StatusRetrying, sendhooks.StatusRetrying, sendhooks.StatusFailed}
		case 2:
			attempts = []sendhooks.Status{sendhooks.StatusRetrying}
		case 3:
			attempts = []sendhooks.Status{sendhooks.StatusRetrying, sendhooks.StatusSuccess}
		}
		jobs = append(jobs, Job{
			StreamID:   fmt.Sprintf("%d-%d", created.UnixMilli(), i%3),
			WebhookID:  fmt.Sprintf("Order-%d", i),
			MessageID:  fmt.Sprintf("msg-%d", i/2), // two webhooks per message
			URL:        urls[i%3],
			Created:    created,
			Attempts:   attempts,
			DurationMs: float64(10 * (i%4 + 1)),
		})
	}
	return jobs
}

// load applies the jobs' events to s in mixed order, with duplicates, in
// batches, and returns the hooks the suite expects, newest first.
func load(t *testing.T, s monitor.Store, jobs []Job) []monitor.Hook {
	t.Helper()
	var events []monitor.Event
	for _, j := range jobs {
		events = append(events, j.Events()...)
	}
	// Reverse, then every third event again: out of order and duplicated.
	slices.Reverse(events)
	for i := 0; i < len(events); i += 3 {
		events = append(events, events[i])
	}
	for start := 0; start < len(events); start += 25 {
		if err := s.Apply(ctx(t), events[start:min(start+25, len(events))]); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return expected(jobs)
}

// expected builds the hooks of jobs by merging their events in order.
func expected(jobs []Job) []monitor.Hook {
	var hooks []monitor.Hook
	for _, j := range jobs {
		h := monitor.Hook{}
		for _, ev := range j.Events() {
			h.Apply(ev)
		}
		hooks = append(hooks, h)
	}
	slices.SortFunc(hooks, func(a, b monitor.Hook) int {
		if c := b.Created.Compare(*a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return hooks
}

// ids lists the hooks' ids.
func ids(hooks []monitor.Hook) []string {
	out := make([]string, len(hooks))
	for i, h := range hooks {
		out[i] = h.ID
	}
	return out
}

// oracle is what a filter selects among want (newest first), read the
// slow way.
func oracle(want []monitor.Hook, f monitor.Filter) []monitor.Hook {
	var fields, exact, sub []monitor.Hook
	for _, h := range want {
		if !f.MatchesFields(h) {
			continue
		}
		fields = append(fields, h)
		if f.Search != "" && f.ExactMatch(h) {
			exact = append(exact, h)
		}
		if f.Search != "" && f.SubstringMatch(h) {
			sub = append(sub, h)
		}
	}
	switch {
	case f.Search == "":
		return fields
	case len(exact) > 0:
		return exact
	default:
		return sub
	}
}

func list(t *testing.T, s monitor.Store, q monitor.ListQuery) monitor.Page {
	t.Helper()
	p, err := s.List(ctx(t), q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return p
}

func testApply(t *testing.T, s monitor.Store) {
	jobs := fixture()
	want := load(t, s, jobs)
	// The same events once more, in order this time: nothing changes.
	for _, j := range jobs {
		if err := s.Apply(ctx(t), j.Events()); err != nil {
			t.Fatalf("Apply again: %v", err)
		}
	}
	for _, w := range want {
		got, err := s.Get(ctx(t), w.ID)
		if err != nil {
			t.Fatalf("Get(%q): %v", w.ID, err)
		}
		if msg := sameHook(got, w); msg != "" {
			t.Errorf("hook %s: %s", w.ID, msg)
		}
	}
	p := list(t, s, monitor.ListQuery{Limit: monitor.MaxLimit})
	if p.Total != int64(len(want)) || len(p.Hooks) != len(want) {
		t.Fatalf("list after a second Apply: %d hooks, total %d; want %d", len(p.Hooks), p.Total, len(want))
	}
	st, err := s.Stats(ctx(t), monitor.StatsQuery{From: base.Add(-time.Hour), To: base.Add(4 * time.Hour), Bucket: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != len(want) {
		t.Errorf("stats total after duplicate events: %d, want %d", st.Total, len(want))
	}
}

// sameHook compares what a user sees of a hook.
func sameHook(got, want monitor.Hook) string {
	switch {
	case got.ID != want.ID || got.IDCopy != want.IDCopy:
		return fmt.Sprintf("id %q/%q, want %q", got.ID, got.IDCopy, want.ID)
	case got.Status != want.Status:
		return fmt.Sprintf("status %s, want %s", got.Status, want.Status)
	case !got.Created.Equal(*want.Created):
		return fmt.Sprintf("created %v, want %v", got.Created, want.Created)
	case (got.Delivered == nil) != (want.Delivered == nil) || got.Delivered != nil && !got.Delivered.Equal(*want.Delivered):
		return fmt.Sprintf("delivered %v, want %v", got.Delivered, want.Delivered)
	case got.URL != want.URL || got.ExternalID != want.ExternalID || got.MessageID != want.MessageID || got.StreamID != want.StreamID:
		return fmt.Sprintf("ids/url %q %q %q %q, want %q %q %q %q", got.URL, got.ExternalID, got.MessageID, got.StreamID, want.URL, want.ExternalID, want.MessageID, want.StreamID)
	case got.Error != want.Error || got.NumberOfTries != want.NumberOfTries || len(got.Attempts) != len(want.Attempts):
		return fmt.Sprintf("error %q tries %d attempts %d, want %q %d %d", got.Error, got.NumberOfTries, len(got.Attempts), want.Error, want.NumberOfTries, len(want.Attempts))
	case got.Job != want.Job:
		return fmt.Sprintf("job %q, want %q", got.Job, want.Job)
	}
	for i := range got.Attempts {
		g, w := got.Attempts[i], want.Attempts[i]
		if g.Number != w.Number || g.Status != w.Status || g.StatusCode != w.StatusCode || g.Error != w.Error || g.DurationMs != w.DurationMs {
			return fmt.Sprintf("attempt %d: %+v, want %+v", i+1, g, w)
		}
	}
	return ""
}

func testGet(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	byStream := want[10]
	for _, c := range []struct{ id, want string }{
		{byStream.ID, byStream.ID},
		{byStream.ExternalID, byStream.ID},
		// Two webhooks share a messageId: the newer one is found.
		{"msg-3", newestOf(want, func(h monitor.Hook) bool { return h.MessageID == "msg-3" })},
	} {
		got, err := s.Get(ctx(t), c.id)
		if err != nil || got.ID != c.want {
			t.Errorf("Get(%q) = %q, %v; want %q", c.id, got.ID, err, c.want)
		}
	}
	// The older engine wrote no messageId: "" is no id, and must not find
	// such a hook (an empty path id would retry it).
	old := sendhooks.StatusEvent{WebhookID: "old-engine-hook", URL: "http://127.0.0.1:9001/Orders", Status: sendhooks.StatusFailed,
		Created: sendhooks.Time{Time: base}, NumberOfTries: 1}
	if err := s.Apply(ctx(t), []monitor.Event{{EntryID: "1-0", StatusEvent: old}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, err := s.Get(ctx(t), "old-engine-hook"); err != nil || got.MessageID != "" {
		t.Fatalf(`Get("old-engine-hook") = %+v, %v; want the hook, without a messageId`, got, err)
	}
	for _, id := range []string{"no-such-hook", "", "order-1", "Order-"} {
		if got, err := s.Get(ctx(t), id); !errors.Is(err, monitor.ErrNotFound) {
			t.Errorf("Get(%q) = %q, %v; want ErrNotFound", id, got.ID, err)
		}
	}
}

func newestOf(hooks []monitor.Hook, keep func(monitor.Hook) bool) string {
	for _, h := range hooks {
		if keep(h) {
			return h.ID
		}
	}
	return ""
}

// filters are the filter shapes the API and the dashboard send.
func filters() []monitor.Filter {
	return []monitor.Filter{
		{},
		{Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Statuses: []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusRetrying}},
		{CreatedFrom: base.Add(37*time.Minute + 30*time.Second), CreatedTo: base.Add(2*time.Hour + 5*time.Minute + 1*time.Second)},
		{Statuses: []sendhooks.Status{sendhooks.StatusSuccess}, CreatedFrom: base.Add(61 * time.Minute)},
		{CreatedTo: base.Add(90 * time.Minute)},
		{DeliveredFrom: base.Add(30 * time.Minute), DeliveredTo: base.Add(2 * time.Hour)},
		{Statuses: []sendhooks.Status{sendhooks.StatusFailed}, DeliveredFrom: base},
		{Search: "order-1"},  // substring, any case
		{Search: "SHIPPING"}, // substring of a url
		{Search: "Order-17"}, // an exact webhookId (also a substring of none other)
		{Search: "Order-1"},  // exact, though a substring of Order-10..19 too
		{Search: "msg-4"},    // an exact messageId
		{Search: "9002/inv", Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Search: "nothing-matches-this"},
		{Search: "Order-2", CreatedFrom: base.Add(time.Hour)}, // exact match filtered out: substring then
	}
}

func testListOffset(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	for _, f := range filters() {
		exp := oracle(want, f)
		for _, limit := range []int{7, 100} {
			var got []monitor.Hook
			for page := 0; page*limit <= len(exp); page++ {
				p := list(t, s, monitor.ListQuery{Filter: f, Limit: limit, Offset: page * limit})
				if p.Total != int64(len(exp)) || p.TotalAtLeast || p.Partial {
					t.Errorf("filter %+v page %d: total %d (at least %v, partial %v), want %d", f, page, p.Total, p.TotalAtLeast, p.Partial, len(exp))
				}
				got = append(got, p.Hooks...)
			}
			if !slices.Equal(ids(got), ids(exp)) {
				t.Errorf("filter %+v, limit %d:\n got %v\nwant %v", f, limit, ids(got), ids(exp))
			}
		}
		p := list(t, s, monitor.ListQuery{Filter: f, Limit: 5, NoTotal: true})
		if !slices.Equal(ids(p.Hooks), ids(exp[:min(5, len(exp))])) {
			t.Errorf("filter %+v without total: got %v", f, ids(p.Hooks))
		}
	}
}

func testKeyset(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	for _, f := range filters() {
		exp := oracle(want, f)
		const limit = 6
		var (
			pages [][]string
			q     = monitor.ListQuery{Filter: f, Limit: limit}
		)
		for range len(exp) + 2 {
			p := list(t, s, q)
			if (q.Older == nil) != (p.Newer == nil) {
				t.Errorf("filter %+v: page %d has Newer %v", f, len(pages), p.Newer)
			}
			pages = append(pages, ids(p.Hooks))
			if p.Older == nil {
				break
			}
			q.Older = p.Older
		}
		if got := slices.Concat(pages...); !slices.Equal(got, ids(exp)) {
			t.Errorf("filter %+v: walking Older gave\n %v\nwant %v", f, got, ids(exp))
			continue
		}
		// Back with Newer from the last page: the same pages, in reverse.
		if len(pages) < 2 {
			continue
		}
		last := exp[len(exp)-len(pages[len(pages)-1]):]
		q = monitor.ListQuery{Filter: f, Limit: limit, Newer: monitor.CursorOf(last[0])}
		for i := len(pages) - 2; i >= 0; i-- {
			p := list(t, s, q)
			if !slices.Equal(ids(p.Hooks), pages[i]) {
				t.Errorf("filter %+v: Newer page %d = %v, want %v", f, i, ids(p.Hooks), pages[i])
				break
			}
			if (i > 0) != (p.Newer != nil) {
				t.Errorf("filter %+v: Newer page %d has Newer %v", f, i, p.Newer)
			}
			if p.Newer == nil {
				break
			}
			q.Newer = p.Newer
		}
	}
}

func testSearch(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	for _, c := range []struct {
		search string
		n      int
	}{
		{"Order-17", 1},
		{"order-17", 1}, // no exact match: substring, any case
		{"ORDER-1", 11}, // Order-1, Order-10..19
		{"Order-1", 1},  // exact
		{"msg-4", 2},
		{"127.0.0.1:9001", 20},
		{"/hooks/shipping", 20},
		{"%", 0}, // literal text, never a pattern
		{"_", 0},
		{".*", 0},
	} {
		p := list(t, s, monitor.ListQuery{Filter: monitor.Filter{Search: c.search}, Limit: monitor.MaxLimit})
		exp := oracle(want, monitor.Filter{Search: c.search})
		if len(exp) != c.n {
			t.Fatalf("suite: oracle gives %d for %q, want %d", len(exp), c.search, c.n)
		}
		if !slices.Equal(ids(p.Hooks), ids(exp)) || p.Total != int64(c.n) {
			t.Errorf("search %q: %v (total %d), want %v", c.search, ids(p.Hooks), p.Total, ids(exp))
		}
	}
}

// countingStore is a store that counts the pages read from it.
type countingStore struct {
	monitor.Store
	lists int
}

func (c *countingStore) List(ctx context.Context, q monitor.ListQuery) (monitor.Page, error) {
	c.lists++
	return c.Store.List(ctx, q)
}

// testCollect checks that monitor.Collect, the bulk retry's read, stops at
// the first page that reaches the end of its search window and says so: a
// search that matches few hooks reads one window, not every hook the
// other filters select.
func testCollect(t *testing.T, s monitor.Store, setWindow func(*testing.T, int)) {
	if setWindow == nil {
		t.Skip("the store's search window cannot be made small")
	}
	want := load(t, s, fixture())
	const window = 5
	setWindow(t, window)
	failed := monitor.Filter{Statuses: []sendhooks.Status{sendhooks.StatusFailed}}
	allFailed := oracle(want, failed)
	if len(allFailed) != 12 {
		t.Fatalf("suite: %d failed hooks, want 12", len(allFailed))
	}
	// The hooks of the first window that pass keep: what one page sees.
	firstWindow := func(keep func(monitor.Hook) bool) []string {
		out := []string{}
		for _, h := range allFailed[:window] {
			if keep(h) {
				out = append(out, h.ID)
			}
		}
		return out
	}
	search, delivered := failed, failed
	search.Search = "9001"
	delivered.DeliveredFrom = base
	nothing := failed
	nothing.Search = "no such text"
	for _, c := range []struct {
		name    string
		f       monitor.Filter
		want    []string
		partial bool
		lists   int
	}{
		{"a search that matches nothing", nothing, []string{}, true, 1},
		{"a search", search, firstWindow(search.SubstringMatch), true, 1},
		{"a delivered range", delivered, firstWindow(delivered.MatchesFields), true, 1},
		// Served by an index, without a window.
		{"statuses alone", failed, ids(allFailed), false, 1},
	} {
		cs := &countingStore{Store: s}
		hooks, partial, err := monitor.Collect(ctx(t), cs, c.f, 1001)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := ids(hooks); !slices.Equal(got, c.want) || partial != c.partial || cs.lists != c.lists {
			t.Errorf("%s: %v, partial %v after %d pages; want %v, partial %v after %d", c.name, got, partial, cs.lists, c.want, c.partial, c.lists)
		}
	}
}

func testTotals(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	// Bounds on and off minute and hour boundaries, and ranges inside one
	// minute, one hour, and across hours.
	bounds := []time.Time{{},
		base, base.Add(59 * time.Second), base.Add(time.Minute), base.Add(62*time.Minute + 500*time.Millisecond),
		base.Add(2 * time.Hour), base.Add(2*time.Hour + 3*time.Minute + 1*time.Second), base.Add(4 * time.Hour),
	}
	for _, from := range bounds {
		for _, to := range bounds {
			if !from.IsZero() && !to.IsZero() && to.Before(from) {
				continue
			}
			for _, st := range [][]sendhooks.Status{nil, {sendhooks.StatusRetrying}, {sendhooks.StatusSuccess, sendhooks.StatusFailed}} {
				f := monitor.Filter{Statuses: st, CreatedFrom: from, CreatedTo: to}
				p := list(t, s, monitor.ListQuery{Filter: f, Limit: 1})
				if exp := len(oracle(want, f)); p.Total != int64(exp) || p.TotalAtLeast {
					t.Errorf("count %v from %v to %v: %d, want %d", st, from, to, p.Total, exp)
				}
			}
		}
	}
}

func testStats(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	for _, q := range []monitor.StatsQuery{
		{From: base.Add(-time.Hour), To: base.Add(5 * time.Hour), Bucket: time.Hour},
		{From: base.Add(30 * time.Minute), To: base.Add(100 * time.Minute), Bucket: 10 * time.Minute},
		{From: base, To: base.Add(24 * time.Hour), Bucket: 6 * time.Hour},
	} {
		got, err := s.Stats(ctx(t), q)
		if err != nil {
			t.Fatalf("Stats(%+v): %v", q, err)
		}
		exp := statsOracle(want, q)
		if msg := sameStats(got, exp); msg != "" {
			t.Errorf("Stats(%v to %v by %v): %s", q.From, q.To, q.Bucket, msg)
		}
	}
}

// testStatsPerReceiver checks that failing endpoints are counted per
// receiver: URLs that differ in path, query, credentials or the case of
// the host count as one, so that a token in every URL makes no more
// counters than receivers.
func testStatsPerReceiver(t *testing.T, s monitor.Store) {
	failed, success := []sendhooks.Status{sendhooks.StatusFailed}, []sendhooks.Status{sendhooks.StatusSuccess}
	jobs := []Job{
		{URL: "http://127.0.0.1:9001/hooks/a?token=1", Attempts: failed},
		{URL: "http://127.0.0.1:9001/hooks/b?token=2", Attempts: failed},
		{URL: "http://user:secret@127.0.0.1:9001/c", Attempts: success},
		{URL: "http://127.0.0.1:9002/x", Attempts: failed},
		{URL: "http://localhost:9003/y", Attempts: failed},
		{URL: "http://LocalHost:9003/Z", Attempts: success},
		{URL: "http://localhost:9004/ok", Attempts: success},
	}
	for i := range jobs {
		jobs[i].Created = base.Add(time.Duration(i) * time.Minute)
		jobs[i].StreamID = fmt.Sprintf("%d-0", jobs[i].Created.UnixMilli())
		jobs[i].WebhookID = fmt.Sprintf("receiver-%d", i)
	}
	load(t, s, jobs)
	st, err := s.Stats(ctx(t), monitor.StatsQuery{From: base.Add(-time.Hour), To: base.Add(2 * time.Hour), Bucket: time.Hour})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	want := []monitor.Endpoint{
		{URL: "http://127.0.0.1:9001", Failed: 2, Total: 3, FailureRate: 2.0 / 3},
		{URL: "http://127.0.0.1:9002", Failed: 1, Total: 1, FailureRate: 1},
		{URL: "http://localhost:9003", Failed: 1, Total: 2, FailureRate: 0.5},
	}
	if !slices.Equal(st.FailingEndpoints, want) {
		t.Errorf("failing endpoints\n got %+v\nwant %+v", st.FailingEndpoints, want)
	}
}

// statsOracle computes the statistics from the rollups each hook adds,
// the slow way.
func statsOracle(hooks []monitor.Hook, q monitor.StatsQuery) monitor.Stats {
	delta := monitor.RollupDelta{}
	for i := range hooks {
		delta.Change(nil, &hooks[i])
	}
	var rows []monitor.RollupRow
	for k, n := range delta {
		rows = append(rows, monitor.RollupRow{RollupKey: k, N: n})
	}
	return monitor.BuildStats(q, rows)
}

func sameStats(got, want monitor.Stats) string {
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if got.SuccessRate != nil && want.SuccessRate != nil {
		g = strings.Replace(g, fmt.Sprint(got.SuccessRate), fmt.Sprint(*got.SuccessRate), 1)
		w = strings.Replace(w, fmt.Sprint(want.SuccessRate), fmt.Sprint(*want.SuccessRate), 1)
	}
	if g != w {
		return fmt.Sprintf("\n got %s\nwant %s", g, w)
	}
	if want.Total == 0 {
		return "the suite's range holds no webhook"
	}
	return ""
}

func testPrune(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	cut := base.Add(90 * time.Minute)
	var kept []monitor.Hook
	for _, h := range want {
		if !h.Created.Before(cut) {
			kept = append(kept, h)
		}
	}
	removed := len(want) - len(kept)
	n1, err := s.Prune(ctx(t), cut, 7)
	if err != nil || n1 > 7 {
		t.Fatalf("Prune(limit 7) = %d, %v", n1, err)
	}
	total := n1
	for range removed + 1 {
		n, err := s.Prune(ctx(t), cut, 7)
		if err != nil {
			t.Fatal(err)
		}
		if total += n; n == 0 {
			break
		}
	}
	// A store that expires webhooks by itself may leave nothing for Prune.
	if total != removed && total != 0 {
		t.Errorf("Prune removed %d webhooks, want %d", total, removed)
	}
	if total == 0 {
		t.Skip("the store expires webhooks by itself")
	}
	p := list(t, s, monitor.ListQuery{Limit: monitor.MaxLimit})
	if !slices.Equal(ids(p.Hooks), ids(kept)) || p.Total != int64(len(kept)) {
		t.Errorf("after Prune the list is %v (total %d), want %v", ids(p.Hooks), p.Total, ids(kept))
	}
	for _, h := range want[len(kept):] {
		if _, err := s.Get(ctx(t), h.ID); !errors.Is(err, monitor.ErrNotFound) {
			t.Errorf("Get(%q) after Prune: %v, want ErrNotFound", h.ID, err)
		}
	}
	q := monitor.StatsQuery{From: base.Add(-time.Hour), To: base.Add(5 * time.Hour), Bucket: time.Hour}
	got, err := s.Stats(ctx(t), q)
	if err != nil {
		t.Fatal(err)
	}
	if msg := sameStats(got, statsOracle(kept, q)); msg != "" {
		t.Errorf("stats after Prune: %s", msg)
	}
	for _, f := range filters() {
		p := list(t, s, monitor.ListQuery{Filter: f, Limit: monitor.MaxLimit})
		if exp := oracle(kept, f); p.Total != int64(len(exp)) || !slices.Equal(ids(p.Hooks), ids(exp)) {
			t.Errorf("after Prune, filter %+v: %v (total %d), want %v", f, ids(p.Hooks), p.Total, ids(exp))
		}
	}
}

func testLimits(t *testing.T, s monitor.Store) {
	for _, q := range []monitor.ListQuery{
		{Limit: 0},
		{Limit: monitor.MaxLimit + 1},
		{Limit: 10, Offset: -1},
		{Limit: 10, Filter: monitor.Filter{Search: strings.Repeat("é", monitor.MaxSearchLength+1)}},
		{Limit: 10, Older: &monitor.Cursor{}, Newer: &monitor.Cursor{}},
	} {
		if _, err := s.List(ctx(t), q); err == nil {
			t.Errorf("List(%+v) succeeded; want an error", q)
		}
	}
	if _, err := s.List(ctx(t), monitor.ListQuery{Limit: 10, Filter: monitor.Filter{Search: strings.Repeat("é", monitor.MaxSearchLength)}}); err != nil {
		t.Errorf("a search of %d characters: %v", monitor.MaxSearchLength, err)
	}
}

// testConcurrentApply has writers race on the same webhooks, as several
// monitors sharing a consumer group do: every writer's events are kept,
// and the rollups count each webhook once.
func testConcurrentApply(t *testing.T, s monitor.Store) {
	const writers, jobs = 6, 4
	attempt := func(j, n int) monitor.Event {
		st := sendhooks.StatusRetrying
		if n == writers {
			st = sendhooks.StatusFailed
		}
		return monitor.Event{StatusEvent: sendhooks.StatusEvent{
			StreamID: fmt.Sprintf("%d-%d", base.UnixMilli(), j), WebhookID: fmt.Sprintf("race-%d", j), URL: "http://127.0.0.1:9001/race",
			Status: st, Attempt: n, NumberOfTries: n, DurationMs: 5, Created: sendhooks.Time{Time: base},
		}}
	}
	errs := make(chan error, writers)
	for w := 1; w <= writers; w++ {
		go func() {
			var evs []monitor.Event
			for j := range jobs {
				evs = append(evs, attempt(j, w))
			}
			errs <- s.Apply(context.Background(), evs)
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	p := list(t, s, monitor.ListQuery{Limit: monitor.MaxLimit})
	if len(p.Hooks) != jobs || p.Total != jobs {
		t.Fatalf("%d hooks (total %d), want %d", len(p.Hooks), p.Total, jobs)
	}
	for _, h := range p.Hooks {
		if len(h.Attempts) != writers || h.NumberOfTries != writers || h.Status != sendhooks.StatusFailed {
			t.Errorf("%s: %d attempts, %d tries, %s; want %d, %d, failed", h.ID, len(h.Attempts), h.NumberOfTries, h.Status, writers, writers)
		}
	}
	st, err := s.Stats(ctx(t), monitor.StatsQuery{From: base.Add(-time.Hour), To: base.Add(time.Hour), Bucket: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != jobs || st.ByStatus[sendhooks.StatusFailed] != jobs || st.Latency.Count != jobs*writers {
		t.Errorf("stats after racing writers: total %d, by status %v, %d attempts; want %d failed, %d attempts", st.Total, st.ByStatus, st.Latency.Count, jobs, jobs*writers)
	}
}

// testRetryMarks checks the retry marks: one of several marking at once
// wins; a mark holds until the marked attempt reports, it is cleared, or
// it lapses; a retrying webhook cannot be marked.
func testRetryMarks(t *testing.T, s monitor.Store) {
	want := load(t, s, fixture())
	var failed, retrying monitor.Hook
	for _, h := range want {
		switch {
		case h.Status == sendhooks.StatusFailed && failed.ID == "":
			failed = h
		case h.Status == sendhooks.StatusRetrying && retrying.ID == "":
			retrying = h
		}
	}
	next := failed.AttemptsMade() + 1
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := s.MarkRetry(context.Background(), failed.ID, next, base)
			if err != nil {
				t.Errorf("MarkRetry: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d of 8 concurrent marks won, want 1", n)
	}
	h, err := s.Get(ctx(t), failed.ID)
	if err != nil || h.RetryQueued != next || h.RetryQueuedAt == nil || !h.RetryQueuedAt.Equal(base) {
		t.Fatalf("marked hook: %d %v (%v), want attempt %d at %v", h.RetryQueued, h.RetryQueuedAt, err, next, base)
	}
	mark := func(id string, at time.Time) bool {
		t.Helper()
		ok, err := s.MarkRetry(ctx(t), id, next, at)
		if err != nil {
			t.Fatalf("MarkRetry(%s): %v", id, err)
		}
		return ok
	}
	if mark(failed.ID, base.Add(monitor.RetryMarkTTL-time.Second)) {
		t.Error("a second mark within the TTL won")
	}
	if !mark(failed.ID, base.Add(monitor.RetryMarkTTL)) {
		t.Error("a mark after the TTL lapsed lost")
	}
	if err := s.ClearRetry(ctx(t), failed.ID, next); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Get(ctx(t), failed.ID); h.RetryQueued != 0 || h.RetryQueuedAt != nil {
		t.Fatalf("after ClearRetry: %d %v", h.RetryQueued, h.RetryQueuedAt)
	}
	if !mark(failed.ID, base) {
		t.Error("a mark after ClearRetry lost")
	}
	// The engine reports the marked attempt: the mark goes, the rest stays.
	ev := monitor.Event{StatusEvent: sendhooks.StatusEvent{StreamID: failed.StreamID, WebhookID: failed.ExternalID, URL: failed.URL,
		Status: sendhooks.StatusSuccess, Attempt: next, NumberOfTries: next, Created: sendhooks.Time{Time: *failed.Created}}}
	if err := s.Apply(ctx(t), []monitor.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Get(ctx(t), failed.ID); h.RetryQueued != 0 || h.RetryQueuedAt != nil || h.Status != sendhooks.StatusSuccess || len(h.Attempts) != len(failed.Attempts)+1 {
		t.Fatalf("after the marked attempt reported: mark %d %v, status %s, %d attempts", h.RetryQueued, h.RetryQueuedAt, h.Status, len(h.Attempts))
	}
	if mark(retrying.ID, base) {
		t.Error("a retrying webhook was marked")
	}
	if _, err := s.MarkRetry(ctx(t), "no-such-hook", 2, base); !errors.Is(err, monitor.ErrNotFound) {
		t.Errorf("MarkRetry of an unknown hook: %v, want ErrNotFound", err)
	}
	p := list(t, s, monitor.ListQuery{Limit: monitor.MaxLimit})
	if p.Total != int64(len(want)) {
		t.Errorf("marks changed the count: %d, want %d", p.Total, len(want))
	}
}

// testLimitsRefused checks that a batch holding a webhook over the limits
// is refused with ErrRejected, and that the same batch without it is
// stored.
func testLimitsRefused(t *testing.T, s monitor.Store) {
	good := Job{StreamID: "1-0", WebhookID: "fine", URL: "http://127.0.0.1:9/ok", Created: base, Attempts: []sendhooks.Status{sendhooks.StatusSuccess}}
	for _, bad := range []Job{
		{StreamID: "2-0", WebhookID: strings.Repeat("w", monitor.MaxIDBytes+1), URL: "http://127.0.0.1:9/x", Created: base, Attempts: []sendhooks.Status{sendhooks.StatusFailed}},
		{StreamID: "3-0", WebhookID: "long-url", URL: "http://127.0.0.1:9/" + strings.Repeat("u", monitor.MaxURLBytes), Created: base, Attempts: []sendhooks.Status{sendhooks.StatusFailed}},
	} {
		err := s.Apply(ctx(t), append(good.Events(), bad.Events()...))
		if !errors.Is(err, monitor.ErrRejected) {
			t.Fatalf("Apply with %.40s…: %v, want ErrRejected", bad.WebhookID, err)
		}
		if _, err := s.Get(ctx(t), bad.StreamID); !errors.Is(err, monitor.ErrNotFound) {
			t.Errorf("the refused hook %s was stored: %v", bad.StreamID, err)
		}
	}
	if err := s.Apply(ctx(t), good.Events()); err != nil {
		t.Fatal(err)
	}
	if p := list(t, s, monitor.ListQuery{Limit: 10}); p.Total != 1 || len(p.Hooks) != 1 || p.Hooks[0].ID != "1-0" {
		t.Errorf("after the refusals: %v (total %d), want the good hook alone", ids(p.Hooks), p.Total)
	}
}

// oldEngineEvents are status events as the old engine wrote them, in
// status-stream order: one per job, no streamId, no attempt number. Jobs
// share webhookIds (order-0 to order-5, three jobs each, the outcomes
// varying; the entries of order-4 differ in their sequence only, 9 before
// 10, which compare the other way as text) and four have none.
func oldEngineEvents() []monitor.Event {
	outcomes := []sendhooks.Status{sendhooks.StatusFailed, sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusSuccess, sendhooks.StatusSuccess}
	var out []monitor.Event
	add := func(entry, webhookID string, st sendhooks.Status, created time.Time) {
		ev := sendhooks.StatusEvent{WebhookID: webhookID, Status: st, URL: "http://127.0.0.1:9004/" + entry,
			Created: sendhooks.Time{Time: created}, PayloadSize: 30, NumberOfTries: 5}
		if st == sendhooks.StatusSuccess {
			ev.NumberOfTries = len(out) % 3
			ev.Delivered = sendhooks.Time{Time: created.Add(time.Second)}
		} else {
			ev.DeliveryError = "webhook sending failed with status: 500, response body: " + entry
		}
		out = append(out, monitor.Event{EntryID: entry, StatusEvent: ev})
	}
	for round := range 3 {
		for i := range 6 {
			created := base.Add(time.Duration(round*20+i) * time.Minute)
			entry := fmt.Sprintf("%d-0", created.UnixMilli()+500)
			if i == 4 {
				entry = fmt.Sprintf("%d-%d", base.UnixMilli(), 8+round) // 8, 9, 10
			}
			add(entry, fmt.Sprintf("order-%d", i), outcomes[(round+i)%len(outcomes)], created)
		}
		add(fmt.Sprintf("%d-1", base.Add(time.Duration(round)*time.Hour).UnixMilli()), "", outcomes[round], base.Add(time.Duration(round)*time.Hour))
	}
	add(fmt.Sprintf("%d-0", base.Add(-time.Hour).UnixMilli()), "", sendhooks.StatusFailed, base.Add(-time.Hour))
	return out
}

// testOldEngineEvents applies the old engine's events out of order, with
// duplicates, in batches: each webhookId shows its newest job's outcome,
// each event without a webhookId is a webhook of its own under its entry
// id, and lists, totals and statistics agree with those webhooks. The
// store keeps what ranks the newest event, so that an older event applied
// in a later batch changes nothing.
func testOldEngineEvents(t *testing.T, s monitor.Store) {
	events := oldEngineEvents()
	// The outcome each webhook must show: its last event in the stream.
	newest := map[string]monitor.Event{}
	for _, ev := range events {
		newest[ev.Key()] = ev
	}
	if len(newest) != 10 {
		t.Fatalf("the fixture makes %d webhooks, want 10", len(newest))
	}
	var want []monitor.Hook
	for k := range newest {
		h := monitor.Hook{}
		for _, ev := range events {
			if ev.Key() == k {
				h.Apply(ev)
			}
		}
		want = append(want, h)
	}
	slices.SortFunc(want, func(a, b monitor.Hook) int {
		return cmp.Or(b.Created.Compare(*a.Created), strings.Compare(b.ID, a.ID))
	})

	shuffled := slices.Clone(events)
	slices.Reverse(shuffled)
	for i := 0; i < len(events); i += 2 {
		shuffled = append(shuffled, events[i])
	}
	for start := 0; start < len(shuffled); start += 4 {
		if err := s.Apply(ctx(t), shuffled[start:min(start+4, len(shuffled))]); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	versions := map[string]int64{}
	for _, w := range want {
		got, err := s.Get(ctx(t), w.ID)
		if err != nil {
			t.Fatalf("Get(%q): %v", w.ID, err)
		}
		ev := newest[w.ID]
		if got.Status != ev.Status || got.Error != ev.DeliveryError || got.URL != ev.URL || got.ExternalID != ev.WebhookID {
			t.Errorf("hook %s: status %s, error %q, url %s, webhookId %q; want the newest event's: %s, %q, %s, %q",
				w.ID, got.Status, got.Error, got.URL, got.ExternalID, ev.Status, ev.DeliveryError, ev.URL, ev.WebhookID)
		}
		if msg := sameHook(got, w); msg != "" {
			t.Errorf("hook %s: %s", w.ID, msg)
		}
		versions[w.ID] = got.Version
	}
	p := list(t, s, monitor.ListQuery{Limit: monitor.MaxLimit})
	if p.Total != int64(len(want)) || !slices.Equal(ids(p.Hooks), ids(want)) {
		t.Errorf("list: %v (total %d), want %v", ids(p.Hooks), p.Total, ids(want))
	}
	for _, st := range []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed} {
		f := monitor.Filter{Statuses: []sendhooks.Status{st}}
		exp := oracle(want, f)
		if p := list(t, s, monitor.ListQuery{Filter: f, Limit: monitor.MaxLimit}); p.Total != int64(len(exp)) || !slices.Equal(ids(p.Hooks), ids(exp)) {
			t.Errorf("status %s: %v (total %d), want %v", st, ids(p.Hooks), p.Total, ids(exp))
		}
	}
	q := monitor.StatsQuery{From: base.Add(-2 * time.Hour), To: base.Add(4 * time.Hour), Bucket: time.Hour}
	check := func(when string) {
		got, err := s.Stats(ctx(t), q)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if msg := sameStats(got, statsOracle(want, q)); msg != "" {
			t.Errorf("stats %s: %s", when, msg)
		}
	}
	check("after the events")

	// Every event once more, oldest first: nothing is written.
	if err := s.Apply(ctx(t), events); err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	for id, v := range versions {
		if got, err := s.Get(ctx(t), id); err != nil || got.Version != v {
			t.Errorf("hook %s written again by the same events: version %d, then %d (%v)", id, v, got.Version, err)
		}
	}
	check("after the same events again")
}
