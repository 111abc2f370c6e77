package mongo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// base is the created time of the test hooks' first: an odd second of an
// hour, so that ranges have parts of minutes and hours at both ends.
var base = time.Date(2025, 3, 4, 9, 58, 13, 250e6, time.UTC)

// realMongoURI names a real MongoDB to test against instead of the
// embedded FerretDB, for the tests of what FerretDB does not do (atomic
// conditional writes, TTL indexes, query plans).
const realMongoURI = "SENDHOOKS_TEST_MONGODB_URI"

// newStore opens a store on a database of its own, set up with retention:
// on the real MongoDB of SENDHOOKS_TEST_MONGODB_URI when set, else on a
// fresh embedded FerretDB.
func newStore(t *testing.T, retention time.Duration) *Store {
	t.Helper()
	s := openEmpty(t)
	if err := s.Setup(context.Background(), retention); err != nil {
		t.Fatal(err)
	}
	return s
}

// jobEvents are the events of one job: attempts 1..n-1 retrying, then the
// outcome (when final is set) at attempt n.
func jobEvents(key, webhookID, url string, created time.Time, n int, final sendhooks.Status) []monitor.Event {
	var out []monitor.Event
	for a := 1; a <= n; a++ {
		st := sendhooks.StatusRetrying
		if a == n && final != "" {
			st = final
		}
		ev := sendhooks.StatusEvent{
			StreamID: key, WebhookID: webhookID, MessageID: "msg-" + key, URL: url, Status: st,
			Created: sendhooks.Time{Time: created}, Attempt: a, NumberOfTries: a,
			DurationMs: float64(10*a) + 0.5, AttemptedAt: sendhooks.Time{Time: created.Add(time.Duration(a) * time.Second)},
		}
		if st == sendhooks.StatusSuccess {
			ev.Delivered = sendhooks.Time{Time: created.Add(time.Duration(a)*time.Second + 300*time.Millisecond)}
		}
		if st != sendhooks.StatusSuccess {
			ev.DeliveryError = "receiver answered 500"
		}
		out = append(out, monitor.Event{EntryID: fmt.Sprintf("%d-%d", created.UnixMilli(), a), StatusEvent: ev})
	}
	return out
}

// corpus is n jobs spread over some hours with a few created times shared
// (ties broken by id), mixed outcomes and urls.
func corpus(n int, spread time.Duration) []monitor.Event {
	r := rand.New(rand.NewPCG(1, 2))
	var out []monitor.Event
	outcomes := []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed, ""}
	for i := range n {
		created := base.Add(time.Duration(i) * spread)
		if i%5 == 4 {
			created = base.Add(time.Duration(i-1) * spread) // a tie with the one before
		}
		key := fmt.Sprintf("%d-%d", 1700000000000+i*7919%1000, i)
		url := fmt.Sprintf("https://r%d.example/Hook/%d", i%3, i)
		out = append(out, jobEvents(key, fmt.Sprintf("Order-%02d", i), url, created, 1+r.IntN(3), outcomes[r.IntN(3)])...)
	}
	return out
}

// apply stores events in batches of size, shuffled.
func apply(t *testing.T, s *Store, events []monitor.Event, size int, seed uint64) {
	t.Helper()
	events = slices.Clone(events)
	r := rand.New(rand.NewPCG(seed, seed))
	r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	for len(events) > 0 {
		n := min(size, len(events))
		if err := s.Apply(context.Background(), events[:n]); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

// expected merges events in memory, in order, into the hooks they make.
func expected(events []monitor.Event) map[string]monitor.Hook {
	hooks := map[string]*monitor.Hook{}
	for _, ev := range events {
		h := hooks[ev.Key()]
		if h == nil {
			h = &monitor.Hook{}
			hooks[ev.Key()] = h
		}
		h.Apply(ev)
	}
	out := map[string]monitor.Hook{}
	for k, h := range hooks {
		out[k] = *h
	}
	return out
}

// allHooks reads every stored hook, newest first.
func allHooks(t *testing.T, s *Store) []monitor.Hook {
	t.Helper()
	hooks, err := s.find(context.Background(), bson.D{}, options.Find().SetSort(newestFirst))
	if err != nil {
		t.Fatal(err)
	}
	return hooks
}

// storedRollups reads every counter that is not zero.
func storedRollups(t *testing.T, s *Store) map[monitor.RollupKey]int64 {
	t.Helper()
	rows, err := s.readRollups(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[monitor.RollupKey]int64{}
	for _, r := range rows {
		if r.N != 0 {
			out[r.RollupKey] += r.N
		}
	}
	return out
}

// rollupsOf are the counters the hooks make.
func rollupsOf(hooks []monitor.Hook) map[monitor.RollupKey]int64 {
	d := monitor.RollupDelta{}
	for i := range hooks {
		d.Change(nil, &hooks[i])
	}
	return d
}

// same compares the fields of hooks that the store keeps, not the time
// of the write nor its version.
func same(a, b monitor.Hook) bool {
	a.UpdatedAt, b.UpdatedAt, a.Version, b.Version = time.Time{}, time.Time{}, 0, 0
	return reflect.DeepEqual(a, b)
}

func TestApplyOutOfOrderAndDuplicates(t *testing.T) {
	s := newStore(t, 0)
	events := corpus(12, 3*time.Minute)
	want := expected(events)
	// Every event three times, shuffled, in batches of several sizes.
	all := slices.Concat(events, events, events)
	apply(t, s, all, 7, 1)
	apply(t, s, all, 1, 2)
	apply(t, s, all, len(all), 3)
	got := allHooks(t, s)
	if len(got) != len(want) {
		t.Fatalf("%d hooks stored, want %d", len(got), len(want))
	}
	for _, h := range got {
		if !same(h, want[h.ID]) {
			t.Errorf("hook %s:\n got %+v\nwant %+v", h.ID, h, want[h.ID])
		}
		if h.Version < 1 {
			t.Errorf("hook %s has version %d", h.ID, h.Version)
		}
	}
	if g, w := storedRollups(t, s), rollupsOf(got); !maps.Equal(g, w) {
		t.Errorf("rollups:\n got %v\nwant %v", g, w)
	}
}

func TestApplyConcurrentWriters(t *testing.T) {
	if os.Getenv(realMongoURI) == "" {
		// FerretDB v1 runs a conditional update as a read, then a write by
		// _id, and stops an update batch at its first error: writers that
		// race both "win" there. The store relies on MongoDB's atomic
		// single-document writes.
		t.Skip("concurrent writers need a real MongoDB: set " + realMongoURI)
	}
	s := newStore(t, time.Hour)
	events := corpus(6, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := slices.Clone(events)
			r := rand.New(rand.NewPCG(uint64(w), 9))
			r.Shuffle(len(ev), func(i, j int) { ev[i], ev[j] = ev[j], ev[i] })
			for i := 0; i < len(ev); i += 3 {
				if err := s.Apply(context.Background(), ev[i:min(i+3, len(ev))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := allHooks(t, s)
	want := expected(events)
	for _, h := range got {
		if !same(h, want[h.ID]) {
			t.Errorf("hook %s:\n got %+v\nwant %+v", h.ID, h, want[h.ID])
		}
	}
	if g, w := storedRollups(t, s), rollupsOf(got); !maps.Equal(g, w) {
		t.Errorf("rollups after concurrent writers:\n got %v\nwant %v", g, w)
	}
}

func TestGet(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	old := jobEvents("1-1", "shared", "https://a.example/", base, 1, sendhooks.StatusFailed)
	newer := jobEvents("2-1", "shared", "https://a.example/", base.Add(time.Minute), 1, sendhooks.StatusSuccess)
	apply(t, s, slices.Concat(old, newer), 10, 1)
	for id, want := range map[string]string{"1-1": "1-1", "2-1": "2-1", "shared": "2-1", "msg-1-1": "1-1"} {
		h, err := s.Get(ctx, id)
		if err != nil || h.ID != want {
			t.Errorf("Get(%q) = %q, %v; want %q", id, h.ID, err, want)
		}
	}
	for _, id := range []string{"", "nope"} {
		if _, err := s.Get(ctx, id); !errors.Is(err, monitor.ErrNotFound) || !strings.Contains(err.Error(), fmt.Sprintf("%q", id)) {
			t.Errorf("Get(%q): %v, want ErrNotFound naming the id", id, err)
		}
	}
}

// list is the list q selects, brute force, without paging.
func list(hooks []monitor.Hook, f monitor.Filter) []monitor.Hook {
	var out []monitor.Hook
	exact := false
	if f.Search != "" {
		for _, h := range hooks {
			exact = exact || f.ExactMatch(h) && f.MatchesFields(h)
		}
	}
	for _, h := range hooks {
		switch {
		case !f.MatchesFields(h):
		case f.Search == "", exact && f.ExactMatch(h), !exact && f.SubstringMatch(h):
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b monitor.Hook) int {
		return cmp.Or(b.Created.Compare(*a.Created), strings.Compare(b.ID, a.ID))
	})
	return out
}

func ids(hooks []monitor.Hook) []string {
	out := make([]string, len(hooks))
	for i, h := range hooks {
		out[i] = h.ID
	}
	return out
}

func TestKeysetPaging(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	apply(t, s, corpus(25, 40*time.Second), 16, 1)
	all := allHooks(t, s)
	for _, f := range []monitor.Filter{
		{},
		{Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Statuses: []sendhooks.Status{sendhooks.StatusFailed, sendhooks.StatusRetrying}},
		{Search: "hook/1"},
	} {
		want := ids(list(all, f))
		// Older, page by page, then back with Newer.
		var pages [][]string
		q := monitor.ListQuery{Filter: f, Limit: 4}
		for {
			p, err := s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, ids(p.Hooks))
			if (len(pages) > 1) != (p.Newer != nil) {
				t.Errorf("%+v: page %d has Newer %v", f, len(pages), p.Newer)
			}
			if p.Older == nil {
				break
			}
			q.Older, q.Newer = p.Older, nil
			if len(pages) > 30 {
				t.Fatal("paging does not end")
			}
			if len(pages) > 1 {
				// Going back from this page gives the one before.
				b, err := s.List(ctx, monitor.ListQuery{Filter: f, Limit: 4, Newer: monitor.CursorOf(pageFirst(t, s, q))})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(b.Hooks), pages[len(pages)-1]) || b.Older == nil {
					t.Errorf("%+v: Newer from page %d gives %v (older %v), want %v", f, len(pages)+1, ids(b.Hooks), b.Older, pages[len(pages)-1])
				}
			}
		}
		if got := slices.Concat(pages...); !slices.Equal(got, want) {
			t.Errorf("%+v: paging older gives %v, want %v", f, got, want)
		}
	}
}

// pageFirst is the first hook of the page q reads.
func pageFirst(t *testing.T, s *Store, q monitor.ListQuery) monitor.Hook {
	t.Helper()
	p, err := s.List(context.Background(), q)
	if err != nil || len(p.Hooks) == 0 {
		t.Fatalf("page %+v: %v, %d hooks", q, err, len(p.Hooks))
	}
	return p.Hooks[0]
}

func TestNewerWalk(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	apply(t, s, corpus(25, 40*time.Second), 16, 1)
	want := ids(list(allHooks(t, s), monitor.Filter{}))
	// From the oldest hook's position back to the newest, with Newer only.
	last := allHooks(t, s)
	oldest := last[len(last)-1]
	got := []string{oldest.ID}
	q := monitor.ListQuery{Limit: 6, Newer: monitor.CursorOf(oldest)}
	for range 10 {
		p, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(slices.Clone(ids(p.Hooks)), got...)
		if p.Older == nil {
			t.Errorf("a Newer page has no Older")
		}
		if p.Newer == nil {
			break
		}
		q.Newer = p.Newer
	}
	if !slices.Equal(got, want) {
		t.Errorf("walking newer gives %v, want %v", got, want)
	}
}

func TestOffsetPaging(t *testing.T) {
	s := newStore(t, 0)
	apply(t, s, corpus(25, 40*time.Second), 25, 1)
	want := ids(list(allHooks(t, s), monitor.Filter{}))
	var got []string
	for off := 0; off < 30; off += 7 {
		p, err := s.List(context.Background(), monitor.ListQuery{Limit: 7, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p.Hooks)...)
		if p.Total != 25 || p.TotalAtLeast {
			t.Errorf("offset %d: total %d (at least %v), want 25", off, p.Total, p.TotalAtLeast)
		}
		if (off > 0 && off < 25) != (p.Newer != nil) || (off+7 < 25) != (p.Older != nil) {
			t.Errorf("offset %d: newer %v older %v", off, p.Newer, p.Older)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("offset paging gives %v, want %v", got, want)
	}
}

func TestSearch(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	events := corpus(20, time.Minute)
	// Two jobs whose webhookId is the url text of others: the exact match wins.
	events = append(events, jobEvents("9-1", "r1.example", "https://x.example/", base.Add(time.Hour), 1, sendhooks.StatusSuccess)...)
	events = append(events, jobEvents("9-2", "r1.example", "https://x.example/", base.Add(2*time.Hour), 1, sendhooks.StatusFailed)...)
	apply(t, s, events, 50, 1)
	all := allHooks(t, s)
	for _, f := range []monitor.Filter{
		{Search: "r1.example"}, // exact: webhookId of two
		{Search: "msg-9-1"},    // exact: messageId
		{Search: "9-2"},        // exact: _id
		{Search: "HOOK/1"},     // substring, ASCII case folded
		{Search: "order-1"},    // substring in webhookId
		{Search: "r2.example", Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Search: "r1.example", Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Search: ".*"}, // literal, not a pattern
		{Search: "nothing"},
	} {
		want := list(all, f)
		p, err := s.List(ctx, monitor.ListQuery{Filter: f, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(p.Hooks), ids(want)) || p.Total != int64(len(want)) || p.TotalAtLeast || p.Partial {
			t.Errorf("%+v: %v total %d (at least %v, partial %v), want %v", f, ids(p.Hooks), p.Total, p.TotalAtLeast, p.Partial, ids(want))
		}
	}
}

func TestSearchWindow(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	defer func(n int) { searchWindow = n }(searchWindow)
	searchWindow = 6
	apply(t, s, corpus(25, time.Minute), 50, 1)
	f := monitor.Filter{Search: "r0.example"}
	want := ids(list(allHooks(t, s), f))
	var got []string
	q := monitor.ListQuery{Filter: f, Limit: 3}
	partial := false
	for range 30 {
		p, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(p.Hooks)...)
		partial = partial || p.Partial
		if p.Partial && (!p.TotalAtLeast || len(p.Hooks) >= 3) {
			t.Errorf("partial page of %d hooks, total at least %v", len(p.Hooks), p.TotalAtLeast)
		}
		if p.Older == nil {
			break
		}
		q.Older = p.Older
	}
	if !partial {
		t.Error("no page says the window was reached")
	}
	if !slices.Equal(got, want) {
		t.Errorf("paging a windowed search gives %v, want %v", got, want)
	}
}

func TestTotals(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	apply(t, s, corpus(60, 7*time.Minute+3*time.Second), 40, 1)
	all := allHooks(t, s)
	failed := []sendhooks.Status{sendhooks.StatusFailed}
	two := []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusRetrying}
	at := func(d time.Duration) time.Time { return base.Add(d) }
	for _, f := range []monitor.Filter{
		{},
		{Statuses: failed},
		{Statuses: two},
		{CreatedFrom: at(5 * time.Minute)},
		{CreatedTo: at(3 * time.Hour)},
		{CreatedFrom: at(90*time.Second + 7*time.Millisecond), CreatedTo: at(5*time.Hour + 1)},
		{CreatedFrom: at(time.Minute), CreatedTo: at(2 * time.Minute)},
		{CreatedFrom: at(7*time.Minute + 3*time.Second), CreatedTo: at(14*time.Minute + 6*time.Second)}, // both ends on hooks
		{Statuses: two, CreatedFrom: at(61 * time.Minute), CreatedTo: at(4*time.Hour + 30*time.Second)},
		{DeliveredFrom: at(time.Hour)},
		{DeliveredFrom: at(time.Hour), DeliveredTo: at(3 * time.Hour), Statuses: []sendhooks.Status{sendhooks.StatusSuccess}},
	} {
		want := list(all, f)
		p, err := s.List(ctx, monitor.ListQuery{Filter: f, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != int64(len(want)) || p.TotalAtLeast {
			t.Errorf("%+v: total %d (at least %v), want %d", f, p.Total, p.TotalAtLeast, len(want))
		}
		if !slices.Equal(ids(p.Hooks), ids(want[:min(5, len(want))])) {
			t.Errorf("%+v: first page %v, want %v", f, ids(p.Hooks), ids(want[:min(5, len(want))]))
		}
		p, err = s.List(ctx, monitor.ListQuery{Filter: f, Limit: 5, NoTotal: true})
		if err != nil || p.Total != 0 {
			t.Errorf("%+v: NoTotal gives total %d, %v", f, p.Total, err)
		}
	}
}

func TestStats(t *testing.T) {
	s := newStore(t, 0)
	apply(t, s, corpus(60, 7*time.Minute+3*time.Second), 40, 1)
	all := allHooks(t, s)
	var rows []monitor.RollupRow
	for k, n := range rollupsOf(all) {
		rows = append(rows, monitor.RollupRow{RollupKey: k, N: n})
	}
	for _, q := range []monitor.StatsQuery{
		{From: base, To: base.Add(8 * time.Hour), Bucket: time.Hour},
		{From: base.Add(30 * time.Minute), To: base.Add(3 * time.Hour), Bucket: 15 * time.Minute},
		{From: base.Add(-time.Hour), To: base.Add(time.Hour), Bucket: time.Minute},
	} {
		got, err := s.Stats(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		want := monitor.BuildStats(q, rows)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v:\n got %+v\nwant %+v", q, got, want)
		}
		if got.Total == 0 {
			t.Errorf("%+v: counted nothing", q)
		}
	}
}

func TestPrune(t *testing.T) {
	s := newStore(t, 2*time.Hour)
	ctx := context.Background()
	apply(t, s, corpus(40, 7*time.Minute), 40, 1)
	cut := base.Add(100 * time.Minute)
	all := allHooks(t, s)
	var old int
	for _, h := range all {
		if h.Created.Before(cut) {
			old++
		}
	}
	removed := 0
	for {
		n, err := s.Prune(ctx, cut, 4)
		if err != nil {
			t.Fatal(err)
		}
		removed += n
		if n < 4 {
			break
		}
	}
	if removed != old || old == 0 {
		t.Errorf("pruned %d hooks, want %d", removed, old)
	}
	left := allHooks(t, s)
	for _, h := range left {
		if h.Created.Before(cut) {
			t.Errorf("hook %s created %v is left", h.ID, h.Created)
		}
	}
	if g, w := storedRollups(t, s), rollupsOf(left); !maps.Equal(g, w) {
		t.Errorf("rollups after prune:\n got %v\nwant %v", g, w)
	}
	// No counter at zero stays for a bucket over before the cut.
	n, err := s.rollups.CountDocuments(ctx, bson.D{{Key: "n", Value: 0}, {Key: "bucket", Value: bson.D{{Key: "$lt", Value: cut.Add(-time.Hour)}}}})
	if err != nil || n != 0 {
		t.Errorf("%d empty counters of pruned buckets left (%v)", n, err)
	}
	p, err := s.List(ctx, monitor.ListQuery{Limit: 100})
	if err != nil || p.Total != int64(len(left)) || len(p.Hooks) != len(left) {
		t.Errorf("after prune: %d hooks listed, total %d, want %d (%v)", len(p.Hooks), p.Total, len(left), err)
	}
}

func TestSetupTwiceAndRetention(t *testing.T) {
	s := newStore(t, 720*time.Hour)
	ctx := context.Background()
	ttl := func() *int32 {
		t.Helper()
		spec, err := findIndex(ctx, s.hooks, bson.D{{Key: "created", Value: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if spec == nil {
			return nil
		}
		if spec.ExpireAfterSeconds == nil {
			t.Fatal("the created index has no expiry")
		}
		return spec.ExpireAfterSeconds
	}
	for _, step := range []struct {
		retention time.Duration
		want      int32 // 0: no TTL index
	}{
		{720 * time.Hour, 720 * 3600},
		{720 * time.Hour, 720 * 3600},
		{48 * time.Hour, 48 * 3600},
		{0, 0},
		{0, 0},
		{time.Hour, 3600},
	} {
		if err := s.Setup(ctx, step.retention); err != nil {
			t.Fatalf("Setup(%v): %v", step.retention, err)
		}
		got := ttl()
		if got == nil && step.want != 0 && !ttlSupported(t, s) {
			t.Logf("the server has no TTL indexes: Setup(%v) left the retention to Prune", step.retention)
			continue
		}
		if (got == nil) != (step.want == 0) || (got != nil && *got != step.want) {
			t.Errorf("after Setup(%v) the TTL is %v, want %d", step.retention, got, step.want)
		}
	}
	spec, err := findIndex(ctx, s.rollups, bson.D{{Key: "expireAt", Value: 1}})
	if ttlSupported(t, s) && (err != nil || spec == nil || spec.ExpireAfterSeconds == nil || *spec.ExpireAfterSeconds != 0) {
		t.Errorf("rollups TTL index: %+v, %v", spec, err)
	}
	// Counters written now expire an hour after their bucket ends.
	apply(t, s, jobEvents("1-1", "w", "https://a.example/", base, 1, sendhooks.StatusSuccess), 1, 1)
	var d struct {
		Kind     string    `bson:"kind"`
		Bucket   time.Time `bson:"bucket"`
		ExpireAt time.Time `bson:"expireAt"`
	}
	if err := s.rollups.FindOne(ctx, bson.D{{Key: "kind", Value: "m"}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if want := d.Bucket.Add(time.Minute + time.Hour); !d.ExpireAt.Equal(want) {
		t.Errorf("minute counter expires at %v, want %v", d.ExpireAt, want)
	}
}

// ttlSupported reports whether the server makes TTL indexes (FerretDB v1
// does not).
func ttlSupported(t *testing.T, s *Store) bool {
	t.Helper()
	c := s.db.Collection("ttlprobe")
	_, err := c.Indexes().CreateOne(context.Background(), mongo.IndexModel{
		Keys: bson.D{{Key: "t", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(60)})
	if err != nil && !notImplemented(err) {
		t.Fatal(err)
	}
	return err == nil
}
