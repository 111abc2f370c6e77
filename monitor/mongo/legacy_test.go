package mongo

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/oldmonitor"
	"github.com/sendhooks/sendhooks/monitor"
)

// oldBase is when the older monitor's first test document was created:
// two hours before the new ones, so that the two overlap in the third.
var oldBase = base.Add(-2 * time.Hour)

// oldHook is the hook a document of the older monitor reads as, built
// from the document's fields by hand.
func oldHook(t *testing.T, d oldmonitor.Doc) monitor.Hook {
	t.Helper()
	m := docField(d)
	created := m["created"].(time.Time)
	h := monitor.Hook{
		ID:         m["_id"].(bson.ObjectID).Hex(),
		IDCopy:     m["id"].(string),
		URL:        m["url"].(string),
		Status:     sendhooks.Status(m["status"].(string)),
		Created:    &created,
		ExternalID: m["externalId"].(string),
		Attempts:   []monitor.Attempt{},
		UpdatedAt:  created,
	}
	if e, ok := m["error"].(string); ok {
		h.Error = e
	}
	if dl, ok := m["delivered"].(time.Time); ok {
		h.Delivered, h.UpdatedAt = &dl, dl
	}
	return h
}

// docField maps a document's fields to their values.
func docField(d oldmonitor.Doc) map[string]any {
	m := make(map[string]any, len(d))
	for _, e := range d {
		m[e.Key] = e.Value
	}
	return m
}

// legacyWorld is a store holding the older monitor's documents and new
// hooks beside them, and what each should read as.
type legacyWorld struct {
	s    *Store
	docs []oldmonitor.Doc
	// hooks are every hook, newest first in the store's order.
	hooks []monitor.Hook
	// old are the ids of the older monitor's hooks.
	old map[string]bool
}

// newLegacyWorld writes jobs of the older monitor's documents into an
// empty database, then sets the store up (as a monitor starting on that
// database does) and ingests newJobs jobs of this monitor beside them.
func newLegacyWorld(t *testing.T, jobs, newJobs int) *legacyWorld {
	t.Helper()
	ctx := context.Background()
	s := openEmpty(t)
	w := &legacyWorld{s: s, docs: oldmonitor.Docs(jobs, oldBase, 23*time.Second), old: map[string]bool{}}
	if err := oldmonitor.Insert(ctx, s.hooks, w.docs); err != nil {
		t.Fatal(err)
	}
	if err := s.Setup(ctx, 0); err != nil {
		t.Fatal(err)
	}
	events := corpus(newJobs, 40*time.Second)
	// One new job in the same millisecond as an old document: the tie
	// is broken by _id across the two types.
	tie := docField(w.docs[len(w.docs)-1])["created"].(time.Time)
	events = append(events, jobEvents("1800000000000-0", "tie-new", "https://new.example/tie", tie, 1, sendhooks.StatusSuccess)...)
	apply(t, s, events, 64, 3)
	for _, d := range w.docs {
		h := oldHook(t, d)
		w.old[h.ID] = true
		w.hooks = append(w.hooks, h)
	}
	for _, h := range expected(events) {
		w.hooks = append(w.hooks, h)
	}
	w.sort(w.hooks)
	return w
}

// sort orders hooks as the store lists them: newest created first, ties
// by _id highest first, where every ObjectId is above every string.
func (w *legacyWorld) sort(hooks []monitor.Hook) {
	slices.SortFunc(hooks, func(a, b monitor.Hook) int {
		return cmp.Or(b.Created.Compare(*a.Created), cmp.Compare(w.rank(b), w.rank(a)))
	})
}

func (w *legacyWorld) rank(h monitor.Hook) string {
	if w.old[h.ID] {
		return "1" + h.ID
	}
	return "0" + h.ID
}

// want is what the filter selects, the slow way, in the store's order.
func (w *legacyWorld) want(f monitor.Filter) []monitor.Hook {
	out := list(w.hooks, f)
	w.sort(out)
	return out
}

// walk reads every page of the filter, older and older, checking each
// page's total; it returns the hooks read.
func (w *legacyWorld) walk(t *testing.T, f monitor.Filter, limit int) []monitor.Hook {
	t.Helper()
	var got []monitor.Hook
	q := monitor.ListQuery{Filter: f, Limit: limit}
	for range 1000 {
		p, err := w.s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		if n := len(w.want(f)); p.Total != int64(n) || p.TotalAtLeast {
			t.Fatalf("List(%+v): total %d (at least: %v), want %d", q, p.Total, p.TotalAtLeast, n)
		}
		got = append(got, p.Hooks...)
		if p.Older == nil {
			return got
		}
		q.Older, q.Offset = p.Older, 0
	}
	t.Fatal("the pages never end")
	return nil
}

// sameHooks reports the first difference between two lists of hooks,
// compared field by field (not the version nor, for new hooks, the time
// of the write).
func (w *legacyWorld) sameHooks(got, want []monitor.Hook) string {
	if !slices.Equal(ids(got), ids(want)) {
		return fmt.Sprintf("ids\n got %v\nwant %v", ids(got), ids(want))
	}
	for i := range got {
		g, e := got[i], want[i]
		g.Version = 0
		if !w.old[g.ID] {
			g.UpdatedAt, e.UpdatedAt = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(g, e) {
			return fmt.Sprintf("hook %s\n got %+v\nwant %+v", g.ID, g, e)
		}
	}
	return ""
}

// filtersOf are filters that select old hooks, new hooks and both, and
// the search of the one that selects nothing.
func (w *legacyWorld) filtersOf(t *testing.T) ([]monitor.Filter, string) {
	t.Helper()
	var anOld, aRepeated monitor.Hook
	for _, h := range w.hooks {
		if w.old[h.ID] {
			anOld = h
			if h.ExternalID == "legacy-order-0005" { // three documents: two failed, one success
				aRepeated = h
			}
		}
	}
	return []monitor.Filter{
		{},
		{Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Statuses: []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed}},
		{CreatedFrom: oldBase.Add(17 * time.Minute), CreatedTo: base.Add(3 * time.Minute)},
		{CreatedFrom: oldBase.Add(95 * time.Minute)},
		{DeliveredFrom: oldBase.Add(15 * time.Minute), DeliveredTo: base.Add(5 * time.Minute)},
		{Statuses: []sendhooks.Status{sendhooks.StatusSuccess}, DeliveredTo: oldBase.Add(time.Hour)},
		{Search: anOld.ID},
		{Search: anOld.IDCopy}, // the older monitor's id is not an id this store looks up
		{Search: aRepeated.ExternalID},
		{Search: aRepeated.ExternalID, Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Search: "OLD-3.example"},
		{Search: "example/hook"},
		{Search: "tie-new"},
	}, anOld.IDCopy
}

// checkReads checks every read of the store against the slow way.
func (w *legacyWorld) checkReads(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	filters, none := w.filtersOf(t)
	for _, f := range filters {
		want := w.want(f)
		if (len(want) == 0) != (f.Search == none) {
			t.Fatalf("filter %+v selects %d hooks", f, len(want))
		}
		if msg := w.sameHooks(w.walk(t, f, 29), want); msg != "" {
			t.Errorf("filter %+v: %s", f, msg)
		}
		// Newer pages back from the oldest.
		if len(want) > 20 {
			q := monitor.ListQuery{Filter: f, Limit: 20, Newer: monitor.CursorOf(want[len(want)-1])}
			p, err := w.s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if msg := w.sameHooks(p.Hooks, want[len(want)-21:len(want)-1]); msg != "" {
				t.Errorf("filter %+v, newer than the oldest: %s", f, msg)
			}
		}
		// An offset page, as the older API asked.
		if len(want) > 30 {
			p, err := w.s.List(ctx, monitor.ListQuery{Filter: f, Limit: 10, Offset: 20})
			if err != nil {
				t.Fatal(err)
			}
			if msg := w.sameHooks(p.Hooks, want[20:30]); msg != "" {
				t.Errorf("filter %+v, offset 20: %s", f, msg)
			}
		}
	}
	// One step older and one newer from every hook that shares its
	// created time with a neighbour: the tie is broken by _id, across
	// the two types of _id too.
	all := w.want(monitor.Filter{})
	ties := 0
	for i := 1; i < len(all); i++ {
		if !all[i].Created.Equal(*all[i-1].Created) {
			continue
		}
		ties++
		p, err := w.s.List(ctx, monitor.ListQuery{Limit: 1, Older: monitor.CursorOf(all[i-1]), NoTotal: true})
		if err != nil {
			t.Fatal(err)
		}
		if msg := w.sameHooks(p.Hooks, all[i:i+1]); msg != "" {
			t.Errorf("the hook older than %s: %s", all[i-1].ID, msg)
		}
		p, err = w.s.List(ctx, monitor.ListQuery{Limit: 1, Newer: monitor.CursorOf(all[i]), NoTotal: true})
		if err != nil {
			t.Fatal(err)
		}
		if msg := w.sameHooks(p.Hooks, all[i-1:i]); msg != "" {
			t.Errorf("the hook newer than %s: %s", all[i].ID, msg)
		}
	}
	if ties < 3 {
		t.Errorf("%d ties in the list, want some", ties)
	}
	// Detail by the ObjectId's hex and by externalId (the newest of the
	// job's documents).
	for i, h := range w.hooks {
		if !w.old[h.ID] || i%9 != 0 {
			continue
		}
		got, err := w.s.Get(ctx, h.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", h.ID, err)
		}
		if msg := w.sameHooks([]monitor.Hook{got}, []monitor.Hook{h}); msg != "" {
			t.Errorf("Get(%s): %s", h.ID, msg)
		}
		got, err = w.s.Get(ctx, h.ExternalID)
		if err != nil {
			t.Fatalf("Get(%s): %v", h.ExternalID, err)
		}
		if newest := w.want(monitor.Filter{Search: h.ExternalID})[0]; got.ID != newest.ID {
			t.Errorf("Get(%s) = %s, want the newest of the job's documents %s", h.ExternalID, got.ID, newest.ID)
		}
	}
	for _, q := range []monitor.StatsQuery{
		{From: oldBase.Add(-time.Hour), To: base.Add(5 * time.Hour), Bucket: time.Hour},
		{From: oldBase.Add(10 * time.Minute), To: base.Add(20 * time.Minute), Bucket: 10 * time.Minute},
		{From: oldBase, To: oldBase.Add(24 * time.Hour), Bucket: 6 * time.Hour},
	} {
		got, err := w.s.Stats(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if msg := sameStatsOf(got, monitor.BuildStats(q, rowsOf(w.hooks))); msg != "" {
			t.Errorf("Stats(%v to %v by %v): %s", q.From, q.To, q.Bucket, msg)
		}
	}
	if got, want := storedRollups(t, w.s), rollupsOf(w.hooks); !reflect.DeepEqual(got, want) {
		t.Errorf("rollups\n got %v\nwant %v", got, want)
	}
}

func rowsOf(hooks []monitor.Hook) []monitor.RollupRow {
	var rows []monitor.RollupRow
	for k, n := range rollupsOf(hooks) {
		rows = append(rows, monitor.RollupRow{RollupKey: k, N: n})
	}
	return rows
}

func sameStatsOf(got, want monitor.Stats) string {
	if want.Total == 0 {
		return "the range holds no webhook"
	}
	g, e := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if got.SuccessRate != nil && want.SuccessRate != nil {
		g = strings.Replace(g, fmt.Sprint(got.SuccessRate), fmt.Sprint(*got.SuccessRate), 1)
		e = strings.Replace(e, fmt.Sprint(want.SuccessRate), fmt.Sprint(*want.SuccessRate), 1)
	}
	if g != e {
		return fmt.Sprintf("\n got %s\nwant %s", g, e)
	}
	return ""
}

// TestOldDocumentsAreReadAsTheyAre starts from a database the older
// monitor wrote and checks every read against the slow way, with new
// hooks beside the old ones, and that nothing of the old documents was
// written.
func TestOldDocumentsAreReadAsTheyAre(t *testing.T) {
	w := newLegacyWorld(t, 70, 30)
	w.checkReads(t)
	// The documents are as the older monitor wrote them.
	for _, d := range w.docs {
		raw, err := w.s.hooks.FindOne(context.Background(), bson.D{{Key: "_id", Value: docField(d)["_id"]}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := bson.Marshal(d)
		if !reflect.DeepEqual([]byte(raw), want) {
			t.Fatalf("document %v was rewritten:\n got %v\nwant %v", docField(d)["_id"], raw, bson.Raw(want))
		}
	}
	// A second Setup counts nothing twice.
	if err := w.s.Setup(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if got, want := storedRollups(t, w.s), rollupsOf(w.hooks); !reflect.DeepEqual(got, want) {
		t.Errorf("rollups after a second Setup\n got %v\nwant %v", got, want)
	}
}

// TestLegacyRollupsBuiltAgain checks that a build of the legacy rollups
// cut short, or done again from the start, ends with the exact counts.
func TestLegacyRollupsBuiltAgain(t *testing.T) {
	w := newLegacyWorld(t, 60, 10)
	ctx := context.Background()
	// Forget how far the build went and spoil a counter: a new build sets
	// every counter of the hours it reads.
	if _, err := w.s.meta.DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.rollups.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: legacyPrefix}, {Key: "$lt", Value: legacyPrefixEnd}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 5}}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.s.Setup(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := storedRollups(t, w.s), rollupsOf(w.hooks); !reflect.DeepEqual(got, want) {
		t.Errorf("rollups\n got %v\nwant %v", got, want)
	}
}

// TestPruneOldDocuments checks that retention removes the older
// monitor's hooks by their created time, with their share of the
// rollups, beside new hooks.
func TestPruneOldDocuments(t *testing.T) {
	w := newLegacyWorld(t, 70, 25)
	ctx := context.Background()
	cut := oldBase.Add(12 * time.Minute)
	removed := 0
	for {
		n, err := w.s.Prune(ctx, cut, 40)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		removed += n
	}
	kept := slices.DeleteFunc(slices.Clone(w.hooks), func(h monitor.Hook) bool { return h.Created.Before(cut) })
	if want := len(w.hooks) - len(kept); removed != want || removed == 0 {
		t.Fatalf("Prune removed %d hooks, want %d", removed, want)
	}
	w.hooks = kept
	if !slices.ContainsFunc(w.hooks, func(h monitor.Hook) bool { return w.old[h.ID] }) {
		t.Fatal("the cut leaves no old hook")
	}
	w.checkReads(t)
}

// TestMigrateInPlace converts the older monitor's documents and checks
// that every read answers as before, that each document is converted
// once, and that a second run converts nothing.
func TestMigrateInPlace(t *testing.T) {
	w := newLegacyWorld(t, 45, 15)
	ctx := context.Background()
	var seen []MigrateProgress
	p, err := w.s.Migrate(ctx, MigrateOptions{Batch: 40}, func(p MigrateProgress) { seen = append(seen, p) })
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(w.docs))
	if p.Total != n || p.ToConvert != n || p.Converted != n {
		t.Fatalf("Migrate = %+v, want %d of %d converted", p, n, n)
	}
	if len(seen) < 3 || seen[0].Converted != 40 {
		t.Errorf("progress %+v, want one report per batch of 40", seen)
	}
	w.checkReads(t)
	for _, d := range w.docs {
		raw, err := w.s.hooks.FindOne(ctx, bson.D{{Key: "_id", Value: docField(d)["_id"]}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		if v := raw.Lookup("version").AsInt64(); v != 1 {
			t.Fatalf("document %v has version %d, want 1", docField(d)["_id"], v)
		}
		for _, gone := range []string{"__v", "external_id"} {
			if _, err := raw.LookupErr(gone); err == nil {
				t.Fatalf("document %v keeps %s", docField(d)["_id"], gone)
			}
		}
		if _, ok := raw.Lookup("error").StringValueOK(); !ok {
			t.Fatalf("document %v: error is %v, want a string", docField(d)["_id"], raw.Lookup("error"))
		}
	}
	p, err = w.s.Migrate(ctx, MigrateOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != n || p.ToConvert != 0 || p.Converted != 0 {
		t.Fatalf("second Migrate = %+v, want nothing to convert", p)
	}
}

// TestMigrateReadsExternalIDOfEarlyVersions converts a document of the
// older monitor's versions before its first release, which named
// externalId external_id.
func TestMigrateReadsExternalIDOfEarlyVersions(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	at := time.Date(2024, 5, 27, 10, 0, 0, 0, time.UTC)
	oid := bson.NewObjectIDFromTimestamp(at)
	doc := bson.D{
		{Key: "_id", Value: oid}, {Key: "id", Value: "1716804000000-0"}, {Key: "url", Value: "https://early.example/"},
		{Key: "status", Value: "success"}, {Key: "created", Value: at}, {Key: "error", Value: nil},
		{Key: "delivered", Value: at.Add(time.Second)}, {Key: "external_id", Value: "early-1"}, {Key: "__v", Value: int32(0)},
	}
	if _, err := s.hooks.InsertOne(ctx, doc); err != nil {
		t.Fatal(err)
	}
	h, err := s.Get(ctx, oid.Hex())
	if err != nil || h.ExternalID != "early-1" {
		t.Fatalf("Get = %+v, %v; want externalId early-1", h, err)
	}
	if _, err := s.Migrate(ctx, MigrateOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Get(ctx, "early-1"); err != nil || h.ID != oid.Hex() {
		t.Fatalf("Get(early-1) after Migrate = %+v, %v", h, err)
	}
}

// TestMigrateLeavesAnUnreadableDocument checks that a document Migrate
// cannot read is left as it is, counted and described, and that the
// others are converted.
func TestMigrateLeavesAnUnreadableDocument(t *testing.T) {
	s := newStore(t, 0)
	ctx := context.Background()
	docs := oldmonitor.Docs(3, oldBase, time.Minute)
	bad := bson.NewObjectIDFromTimestamp(oldBase)
	docs = append(docs, bson.D{{Key: "_id", Value: bad}, {Key: "id", Value: "1-0"}, {Key: "created", Value: "yesterday"}, {Key: "__v", Value: int32(0)}})
	if err := oldmonitor.Insert(ctx, s.hooks, docs); err != nil {
		t.Fatal(err)
	}
	p, err := s.Migrate(ctx, MigrateOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(docs))
	if p.Total != n || p.Converted != n-1 || p.Unreadable != 1 || len(p.Errors) != 1 || !strings.Contains(p.Errors[0], bad.Hex()) {
		t.Fatalf("Migrate = %+v, want %d converted and %s unreadable", p, n-1, bad.Hex())
	}
	raw, err := s.hooks.FindOne(ctx, bson.D{{Key: "_id", Value: bad}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.LookupErr("version"); err == nil {
		t.Fatalf("the unreadable document was written: %v", raw)
	}
}
