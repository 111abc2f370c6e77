package mongo

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// asEarlierVersion replaces the receiver counters of w's store by the
// per-URL counters an earlier version kept: one per URL, status and hour,
// the older monitor's hooks in legacy counters. It returns how many it
// wrote.
func (w *legacyWorld) asEarlierVersion(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	if _, err := w.s.rollups.DeleteMany(ctx, bson.D{{Key: "kind", Value: string(monitor.RollupReceiver)}}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	keys := map[string]monitor.RollupKey{}
	for _, h := range w.hooks {
		k := monitor.RollupKey{Kind: monitor.RollupEndpoint, Bucket: h.Created.UTC().Truncate(time.Hour), Status: h.Status, URL: h.URL}
		id := rollupID(k)
		if w.old[h.ID] {
			id = legacyPrefix + id
		}
		counts[id]++
		keys[id] = k
	}
	var docs []any
	for id, n := range counts {
		docs = append(docs, append(bson.D{{Key: "_id", Value: id}}, append(rollupFields(keys[id]), bson.E{Key: "n", Value: n})...))
	}
	if _, err := w.s.rollups.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

// countKind counts the counters of a kind.
func countKind(t *testing.T, s *Store, kind monitor.RollupKind) int64 {
	t.Helper()
	n, err := s.rollups.CountDocuments(context.Background(), bson.D{{Key: "kind", Value: string(kind)}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSetupMovesPerURLCountersToReceivers starts on a database whose
// statistics an earlier version counted per URL, for this monitor's hooks
// and the older monitor's (legacy counters). Before Setup runs, a new
// hook is counted per receiver in one of those hours, and the move of the
// newest hour is cut short after its receiver counters were written and
// one of its per-URL ones deleted. Setup then leaves exactly the counters
// a store counting per receiver from the start holds, none per URL, and
// every read as it should be; a second Setup changes nothing.
func TestSetupMovesPerURLCountersToReceivers(t *testing.T) {
	w := newLegacyWorld(t, 40, 30)
	ctx := context.Background()
	if n := w.asEarlierVersion(t); n < len(w.hooks)/2 {
		t.Fatalf("%d per-URL counters for %d hooks: the test wants most URLs distinct", n, len(w.hooks))
	}

	late := jobEvents("1800000000001-0", "late-new", "https://r1.example/Hook/late?token=x", base.Add(time.Minute), 1, sendhooks.StatusFailed)
	apply(t, w.s, late, 1, 1)
	for _, h := range expected(late) {
		w.hooks = append(w.hooks, h)
	}
	w.sort(w.hooks)

	var first rollupDoc
	err := w.s.rollups.FindOne(ctx, bson.D{{Key: "kind", Value: string(monitor.RollupEndpoint)}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: legacyPrefix}}}},
		options.FindOne().SetSort(bson.D{{Key: "bucket", Value: -1}})).Decode(&first)
	if err != nil {
		t.Fatal(err)
	}
	hour := bson.D{{Key: "kind", Value: string(monitor.RollupEndpoint)}, {Key: "bucket", Value: first.Bucket},
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: legacyPrefix}}}}
	if err := w.s.moveEndpointHour(ctx, hour); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.rollups.DeleteOne(ctx, hour); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := w.s.Setup(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if n := countKind(t, w.s, monitor.RollupEndpoint); n != 0 {
			t.Fatalf("%d per-URL counters left after Setup", n)
		}
		if got, want := storedRollups(t, w.s), rollupsOf(w.hooks); !reflect.DeepEqual(got, want) {
			t.Fatalf("rollups\n got %v\nwant %v", got, want)
		}
	}
	w.checkReads(t)
	st, err := w.s.Stats(ctx, monitor.StatsQuery{From: oldBase.Add(-time.Hour), To: base.Add(2 * time.Hour), Bucket: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	receivers := map[string]bool{}
	for _, h := range w.hooks {
		receivers[monitor.ReceiverOf(h.URL)] = true
	}
	for _, e := range st.FailingEndpoints {
		if !receivers[e.URL] {
			t.Errorf("failing endpoint %q is not a receiver of the hooks (%v)", e.URL, receivers)
		}
	}
	if len(st.FailingEndpoints) == 0 {
		t.Error("no failing endpoint")
	}
}
