package bench

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/mongotest"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/stores"
)

// monitorRowNames are the API rows of a run of n webhooks, in order.
func monitorRowNames(n int) []string {
	page := deepPageOf(n)
	return []string{
		"list, first page (limit 20), with total",
		"list status=failed",
		"list status=success,retrying",
		"list created on one day",
		"list delivered in the last 6 h",
		"list page=" + strconv.Itoa(page) + "&limit=100 (offset " + strconv.Itoa((page-1)*100) + ")",
		"list keyset step (older= cursor, limit 100)",
		"search, exact webhookId",
		"search, substring of 1 URL in 50",
		"search, substring matching nothing",
		"webhook detail GET /hooks/{id}",
		"stats, 24 h in 1 h buckets",
		"stats, 7 d in 6 h buckets",
		"dashboard HTML list page GET /",
	}
}

// TestMonitor runs the whole measurement small on SQLite: every answer is
// checked inside Monitor, which fails on the first wrong one; the result
// and the table must have every row.
func TestMonitor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 2000, Block: 500, Requests: 2, Progress: &progress})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	if res.Store != "SQLite" || res.Webhooks != 2000 || res.Events != 2800 || res.Succeeded != 1800 || res.Failed != 200 {
		t.Errorf("store %q, %d webhooks, %d events, %d success, %d failed; want SQLite, 2000, 2800, 1800, 200",
			res.Store, res.Webhooks, res.Events, res.Succeeded, res.Failed)
	}
	if len(res.Blocks) != 4 {
		t.Fatalf("%d ingest blocks, want 4: %+v", len(res.Blocks), res.Blocks)
	}
	events := 0
	for k, b := range res.Blocks {
		events += b.Events
		if b.First != k*500+1 || b.Last != (k+1)*500 || b.Duration <= 0 {
			t.Errorf("block %d is %+v, want webhooks %d to %d and a positive duration", k, b, k*500+1, (k+1)*500)
		}
	}
	// The producer writes 1,000 events per round and may run 50,000 ahead:
	// ingestion never waits for it (a lead of 0), whether or not a poll
	// saw it producing (-1 when none did).
	if events != 2800 || res.EventsPerSecond <= 0 || res.MonitorCPU <= 0 || res.MinLead == 0 || res.MinLead < -1 {
		t.Errorf("blocks hold %d events, %v events/s, CPU %v, min lead %d; want 2800, positive, positive, -1 or positive",
			events, res.EventsPerSecond, res.MonitorCPU, res.MinLead)
	}
	if res.PeakRSS <= 0 || res.DBBytes <= 0 || res.RedisMemory <= 0 {
		t.Errorf("peak RSS %d, database %d bytes, Redis memory %d; want all positive", res.PeakRSS, res.DBBytes, res.RedisMemory)
	}
	var names []string
	for _, a := range res.API {
		names = append(names, a.Name)
		if a.P50 <= 0 || a.P95 < a.P50 || a.Max < a.P95 || !strings.HasPrefix(a.Path, "/") {
			t.Errorf("API row %+v: want a path and 0 < P50 <= P95 <= Max", a)
		}
	}
	if want := monitorRowNames(2000); !slices.Equal(names, want) {
		t.Errorf("API rows\n%q\nwant\n%q", names, want)
	}
	for _, want := range []string{"monitor: webhooks 1501 to 2000 ingested: ", "ingested 2800 status events in "} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, &progress)
		}
	}

	var table bytes.Buffer
	if err := (Report{Monitor: &res}).Write(&table); err != nil {
		t.Fatal(err)
	}
	rows := []string{"| monitor store ", "| SQLite; 2000 webhooks, 2800 status events (1800 success, 200 failed) ",
		"| monitor ingest, webhooks 1501 to 2000, events/s ", "| monitor ingest, all, events/s ",
		"| monitor ingest, last block / first block ", "| monitor process peak RSS (VmHWM), ingestion and requests ",
		"| SQLite file + write-ahead log, per 1,000,000 webhooks "}
	for _, name := range monitorRowNames(2000) {
		rows = append(rows, "| "+name+", 2000 webhooks: p50 / p95 / max ")
	}
	for _, want := range rows {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, &table)
		}
	}
	// Every row with a target says whether it was met: 13 API rows, the
	// ingest rate, its flatness and the RSS.
	if n := strings.Count(table.String(), " (met)") + strings.Count(table.String(), " (MISSED)"); n != 16 {
		t.Errorf("%d rows with a target, want 16:\n%s", n, &table)
	}
}

func TestMonitorRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		o    MonitorOptions
		want string
	}{
		{MonitorOptions{Webhooks: 499, Requests: 1}, "want at least 500 webhooks and 1 request, got 499 and 1"},
		{MonitorOptions{Webhooks: 500, Requests: 0}, "want at least 500 webhooks and 1 request, got 500 and 0"},
		{MonitorOptions{Webhooks: 500, Requests: 1, Store: "postgres"}, `-store "postgres": want sqlite or ferretdb (or -mongodb-uri for MongoDB)`},
		{MonitorOptions{Webhooks: 500, Requests: 1, Store: StoreMongoDB}, "-store mongodb needs -mongodb-uri"},
		{MonitorOptions{Webhooks: 500, Requests: 1, Store: StoreFerretDB, MongoURI: "mongodb://127.0.0.1:27017"}, "-mongodb-uri and -store ferretdb: give one"},
		{MonitorOptions{Webhooks: 500, Requests: 1, MongoURI: "http://127.0.0.1:27017"}, `-mongodb-uri "http://127.0.0.1:27017": want a mongodb:// or mongodb+srv:// connection string`},
	} {
		_, err := Monitor(context.Background(), c.o)
		if err == nil || err.Error() != c.want {
			t.Errorf("Monitor(%+v): %v, want %q", c.o, err, c.want)
		}
	}
}

// TestOrderSet checks the webhooks sent: their statuses, their events in
// stream order (every retrying event before its webhook's final one, in a
// later batch), and the block boundaries.
func TestOrderSet(t *testing.T) {
	set := newOrderSet(1000, time.Date(2026, 5, 24, 12, 0, 0, 0, time.UTC))
	var events, final int
	last := map[int]int{} // webhook -> last attempt seen
	at := map[int]int{}   // webhook -> event number of its first event
	count := map[sendhooks.Status]int{}
	for p := range set.positions() {
		err := set.at(p, func(i, attempt int) error {
			ev := set.event(i, attempt)
			if _, err := monitor.ParseEvent(ev.AppendJSON(nil)); err != nil {
				t.Fatalf("event %d/%d does not parse: %v", i, attempt, err)
			}
			if attempt != last[i]+1 {
				t.Fatalf("webhook %d: attempt %d after %d", i, attempt, last[i])
			}
			if attempt == 1 {
				at[i] = events
			}
			last[i] = attempt
			events++
			if ev.Status.Final() {
				final++
				count[ev.Status]++
				if attempt > 1 && i < set.n-finalDelay && events-at[i] < int(monitor.DefaultBatchSize) {
					t.Errorf("webhook %d: final event %d events after its first, want a later batch", i, events-at[i])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if events != 1400 || final != 1000 || count[sendhooks.StatusSuccess] != 900 || count[sendhooks.StatusFailed] != 100 {
		t.Errorf("%d events, %d final (%v); want 1400, 1000 (900 success, 100 failed)", events, final, count)
	}
	// 11 events per 10 webhooks first; the final events of the retried
	// ones (3 in 10) follow finalDelay (5,000) webhooks later: after all
	// 1,000 here, in the last block.
	if ends := set.blockEnds(300); !slices.Equal(ends, []int{330, 660, 990, 1400}) {
		t.Errorf("block ends %v, want [330 660 990 1400]", ends)
	}
	if c0, c1 := set.created(0), set.created(999); !c0.After(set.now.Add(-7*24*time.Hour)) || !c1.Equal(set.now.Add(-time.Minute)) {
		t.Errorf("created from %v to %v, want after %v up to a minute before %v", c0, c1, set.now.Add(-7*24*time.Hour), set.now)
	}
	// Every webhook has a URL of its own, to one of the receivers.
	urls, hosts := map[string]bool{}, map[string]bool{}
	for i := range set.n {
		urls[set.url(i)] = true
		hosts[monitor.ReceiverOf(set.url(i))] = true
	}
	if len(urls) != set.n || len(hosts) != receivers || !receiverURL.MatchString(monitor.ReceiverOf(set.url(7))) {
		t.Errorf("%d URLs to %d receivers (%s), want %d to %d", len(urls), len(hosts), monitor.ReceiverOf(set.url(7)), set.n, receivers)
	}
}

// TestWantListRefusesWrongAnswers makes sure the checks can fail.
func TestWantListRefusesWrongAnswers(t *testing.T) {
	body := []byte(`{"data":[{"_id":"1-0","externalId":"order-9","status":"failed","url":"https://receiver-07.example.com/"}],
"meta":{"totalItems":3,"totalIsLowerBound":true}}`)
	good := listWant{total: 3, lowerBound: true, size: 1, first: "order-9", status: sendhooks.StatusFailed, urlContains: "receiver-07."}
	if err := wantList(good)(body); err != nil {
		t.Fatalf("right answer refused: %v", err)
	}
	for _, w := range []listWant{
		{total: 4, lowerBound: true, size: 1, first: "order-9"},
		{total: 3, size: 1, first: "order-9"},
		{total: 3, lowerBound: true, partial: true, size: 1, first: "order-9"},
		{total: 3, lowerBound: true, size: 2, first: "order-9"},
		{total: 3, lowerBound: true, size: 1, first: "order-8"},
		{total: 3, lowerBound: true, size: 1, first: "order-9", status: sendhooks.StatusSuccess},
		{total: 3, lowerBound: true, size: 1, first: "order-9", urlContains: "receiver-08."},
	} {
		if err := wantList(w)(body); err == nil {
			t.Errorf("want %+v: the answer passed", w)
		}
	}
}

// mongoStoreMissing reports why this build cannot open a MongoDB store
// ("" when it can): the MongoDB adapter is merged separately.
func mongoStoreMissing() string {
	s, err := stores.Open(monitor.Config{MongoURI: "mongodb://127.0.0.1:1/sendhooks", MongoDatabase: "sendhooks"})
	if err != nil {
		return err.Error()
	}
	_ = s.Close(context.Background())
	return ""
}

// TestMonitorOnAGivenMongoDB measures on a server given by its connection
// string, in a database of its own that is gone afterwards.
func TestMonitorOnAGivenMongoDB(t *testing.T) {
	if raceEnabled {
		// Under the race detector the embedded FerretDB v1 ingests a few
		// events a second (every counter is its own SQLite write there),
		// so a run of the smallest size takes minutes: this test runs
		// without -race (go test ./internal/bench -run MongoDB|FerretDB).
		t.Skip("the embedded FerretDB is too slow under the race detector")
	}
	if why := mongoStoreMissing(); why != "" {
		t.Skipf("no MongoDB store in this build: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := mongotest.Start(t)
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 500, Requests: 1, Progress: &progress, MongoURI: "mongodb://" + srv.Addr()})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	if res.Store != "MongoDB" || res.Webhooks != 500 || len(res.API) != len(monitorRowNames(500)) {
		t.Errorf("store %q, %d webhooks, %d API rows; want MongoDB, 500, %d", res.Store, res.Webhooks, len(res.API), len(monitorRowNames(500)))
	}
	if !strings.Contains(progress.String(), "measuring on mongodb://"+srv.Addr()+"/sendhooks_bench_") {
		t.Errorf("progress does not name the server and database:\n%s", &progress)
	}
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	names, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, "sendhooks_bench_") {
			t.Errorf("database %s left behind", name)
		}
	}
}

// TestMonitorFerretDBSmoke runs the measurement on the embedded FerretDB:
// its figures carry the smoke-test label and no target.
func TestMonitorFerretDBSmoke(t *testing.T) {
	if raceEnabled {
		// Under the race detector the embedded FerretDB v1 ingests a few
		// events a second (every counter is its own SQLite write there),
		// so a run of the smallest size takes minutes: this test runs
		// without -race (go test ./internal/bench -run MongoDB|FerretDB).
		t.Skip("the embedded FerretDB is too slow under the race detector")
	}
	if why := mongoStoreMissing(); why != "" {
		t.Skipf("no MongoDB store in this build: %s", why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 500, Requests: 1, Store: StoreFerretDB, Progress: &progress})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	var table bytes.Buffer
	if err := (Report{Monitor: &res}).Write(&table); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(table.String(), "(met)") || strings.Contains(table.String(), "(MISSED)") ||
		strings.Count(table.String(), "none: "+ferretLabel) != len(res.rows()) {
		t.Errorf("FerretDB rows must all carry %q and no target:\n%s", ferretLabel, &table)
	}
}
