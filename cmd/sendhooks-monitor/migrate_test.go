package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	drv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/mongotest"
	"github.com/sendhooks/sendhooks/internal/oldmonitor"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/mongo"
)

// migrateProc is `sendhooks-monitor migrate` running as a child process;
// lines receives its stderr line by line, and is closed when it ends.
type migrateProc struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   strings.Builder
	done  chan struct{}
	err   error
}

func startMigrate(t *testing.T, env []string, args ...string) *migrateProc {
	t.Helper()
	p := &migrateProc{
		cmd:   exec.Command(os.Args[0], append([]string{"migrate"}, args...)...),
		lines: make(chan string, 1000),
		done:  make(chan struct{}),
	}
	p.cmd.Env = append(os.Environ(), append(env, runAsMonitor+"=1")...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// output is what the process wrote so far.
func (p *migrateProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// wait waits for the process to end and returns its exit code.
func (p *migrateProc) wait(t *testing.T) int {
	t.Helper()
	// Generous: the embedded FerretDB converts a few documents a second
	// under the race detector on two shared cores.
	select {
	case <-p.done:
	case <-time.After(6 * time.Minute):
		t.Fatalf("migrate did not end; output:\n%s", p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// progressLine is the progress migrate prints after a batch.
var progressLine = regexp.MustCompile(`^migrate: converted (\d+)/(\d+) \(\d+%\), \d+ documents/s$`)

// oldDatabase starts an embedded MongoDB holding the older monitor's
// documents of jobs webhooks, and returns a store on it (set up, as the
// monitor does when it starts) and the environment naming it.
func oldDatabase(t *testing.T, jobs int) (*mongo.Store, *drv.Collection, []oldmonitor.Doc, []string) {
	t.Helper()
	ctx := context.Background()
	srv := mongotest.Start(t)
	client, err := drv.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	coll := client.Database(srv.Database()).Collection(mongo.HooksCollection)
	docs := oldmonitor.Docs(jobs, time.Date(2024, 6, 20, 8, 59, 30, 0, time.UTC), 41*time.Second)
	if err := oldmonitor.Insert(ctx, coll, docs); err != nil {
		t.Fatal(err)
	}
	store, err := mongo.Open(srv.URI(), srv.Database())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	if err := store.Setup(ctx, 0); err != nil {
		t.Fatal(err)
	}
	return store, coll, docs, []string{"MONGODB_URI=" + srv.URI(), "SQLITE_PATH=", "RETENTION=0"}
}

// answers are the store's answers to every page of the list and of a few
// filters, the detail of every tenth document by its ObjectId and by its
// externalId, and the statistics, as the API's JSON.
func answers(t *testing.T, s *mongo.Store, docs []oldmonitor.Doc) string {
	t.Helper()
	ctx := context.Background()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	put := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []monitor.Filter{
		{},
		{Statuses: []sendhooks.Status{sendhooks.StatusFailed}},
		{Search: "legacy-order-0007"},
		{Search: "old-2.example"},
		{DeliveredFrom: time.Date(2024, 6, 20, 9, 30, 0, 0, time.UTC)},
	} {
		q := monitor.ListQuery{Filter: f, Limit: 50}
		for {
			p, err := s.List(ctx, q)
			put(p, err)
			if p.Older == nil {
				break
			}
			q.Older = p.Older
		}
	}
	for i, d := range docs {
		if i%10 != 0 {
			continue
		}
		for _, e := range d {
			switch e.Key {
			case "_id":
				put(s.Get(ctx, e.Value.(bson.ObjectID).Hex()))
			case "externalId":
				put(s.Get(ctx, e.Value.(string)))
			}
		}
	}
	day := time.Date(2024, 6, 20, 0, 0, 0, 0, time.UTC)
	put(s.Stats(ctx, monitor.StatsQuery{From: day, To: day.Add(24 * time.Hour), Bucket: time.Hour}))
	put(s.Stats(ctx, monitor.StatsQuery{From: day.Add(9 * time.Hour), To: day.Add(11 * time.Hour), Bucket: 10 * time.Minute}))
	return b.String()
}

// rawDocs reads every document of the collection as stored, in _id order.
func rawDocs(t *testing.T, coll *drv.Collection) []bson.Raw {
	t.Helper()
	cur, err := coll.Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// converted counts the documents in the new shape, and fails the test on
// a document converted more than once (a version above 1).
func converted(t *testing.T, coll *drv.Collection) int {
	t.Helper()
	n := 0
	for _, raw := range rawDocs(t, coll) {
		v, ok := raw.Lookup("version").AsInt64OK()
		switch {
		case !ok:
		case v == 1:
			n++
		default:
			t.Fatalf("document %v has version %d: converted more than once", raw.Lookup("_id"), v)
		}
	}
	return n
}

// TestMigrateKilledHalfwayAndRunAgain kills `sendhooks-monitor migrate`
// once its progress shows some documents converted but not all, runs it
// again to the end, and checks that every document was converted exactly
// once and that every answer is the same as before.
func TestMigrateKilledHalfwayAndRunAgain(t *testing.T) {
	store, coll, docs, env := oldDatabase(t, 100)
	total := len(docs)
	before := answers(t, store, docs)

	first := startMigrate(t, env, "-batch", "20", "-pause", "300ms")
	killed := false
	for line := range first.lines {
		m := progressLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if all, _ := strconv.Atoi(m[2]); all != total {
			t.Fatalf("progress %q: want %d to convert", line, total)
		}
		if n >= 40 && n < total {
			if err := first.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
			break
		}
	}
	first.wait(t)
	if !killed {
		t.Fatalf("migrate ended before it could be killed; output:\n%s", first.output())
	}
	done := converted(t, coll)
	if done == 0 || done == total {
		t.Fatalf("%d of %d documents converted when killed, want some but not all", done, total)
	}

	second := startMigrate(t, env, "-batch", "50")
	if code := second.wait(t); code != 0 {
		t.Fatalf("second run exited %d:\n%s", code, second.output())
	}
	want := fmt.Sprintf("migrate: done: converted %d documents of the older monitor in ", total-done)
	if !strings.Contains(second.output(), want) {
		t.Fatalf("second run's output lacks %q:\n%s", want, second.output())
	}
	if n := converted(t, coll); n != total {
		t.Fatalf("%d of %d documents converted", n, total)
	}
	if after := answers(t, store, docs); after != before {
		t.Fatalf("answers changed by the migration:\nbefore %s\nafter  %s", before, after)
	}
}

// TestMigrateTwiceChangesNothing runs migrate to the end, then again: the
// second run says there is nothing to migrate and writes nothing.
func TestMigrateTwiceChangesNothing(t *testing.T) {
	_, coll, docs, env := oldDatabase(t, 70)
	first := startMigrate(t, env)
	if code := first.wait(t); code != 0 {
		t.Fatalf("first run exited %d:\n%s", code, first.output())
	}
	if !strings.Contains(first.output(), fmt.Sprintf("migrate: done: converted %d documents", len(docs))) {
		t.Fatalf("first run's output:\n%s", first.output())
	}
	stored := rawDocs(t, coll)
	second := startMigrate(t, env)
	if code := second.wait(t); code != 0 {
		t.Fatalf("second run exited %d:\n%s", code, second.output())
	}
	want := fmt.Sprintf("migrate: nothing to migrate: the %d documents of the older monitor in database \"test\", collection \"hooks\" are converted already\n", len(docs))
	if got := second.output(); got != want {
		t.Fatalf("second run's output\n got %q\nwant %q", got, want)
	}
	again := rawDocs(t, coll)
	if len(again) != len(stored) {
		t.Fatalf("%d documents, want %d", len(again), len(stored))
	}
	for i := range stored {
		if !bytes.Equal(again[i], stored[i]) {
			t.Fatalf("the second run changed %v:\n got %v\nwant %v", stored[i].Lookup("_id"), again[i], stored[i])
		}
	}
}

// TestMigrateOnSQLiteAndErrors checks what migrate says where there is
// nothing to migrate and when it cannot run.
func TestMigrateOnSQLiteAndErrors(t *testing.T) {
	sqlite := startMigrate(t, []string{"SQLITE_PATH=" + filepath.Join(t.TempDir(), "monitor.db"), "MONGODB_URI="})
	if code := sqlite.wait(t); code != 0 || !strings.Contains(sqlite.output(), "migrate: nothing to migrate: SQLITE_PATH names an SQLite file") {
		t.Errorf("on SQLite: exit %d, output:\n%s", code, sqlite.output())
	}
	bad := startMigrate(t, []string{"SQLITE_PATH=", "MONGODB_URI=mongodb://127.0.0.1:27017/x"}, "-batch", "0")
	if code := bad.wait(t); code == 0 || !strings.Contains(bad.output(), "-batch must be from 1 to 10000, got 0") {
		t.Errorf("-batch 0: exit %d, output:\n%s", code, bad.output())
	}
	// A port where nothing listens: the connection fails with a message.
	l := freePort(t)
	away := startMigrate(t, []string{"SQLITE_PATH=", fmt.Sprintf("MONGODB_URI=mongodb://127.0.0.1:%d/sendhooks", l)})
	if code := away.wait(t); code == 0 || !strings.Contains(away.output(), "sendhooks-monitor: migrate: count the documents of the older monitor") {
		t.Errorf("MongoDB away: exit %d, output:\n%s", code, away.output())
	}
}
