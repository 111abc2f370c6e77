package mongo

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// Index names, as MongoDB names them from their keys.
const (
	ixID         = "_id_"
	ixCreated    = "created_-1__id_-1"
	ixStatus     = "status_1_created_-1__id_-1"
	ixDelivered  = "delivered_-1__id_-1"
	ixExternalID = "externalId_1_created_-1"
	ixMessageID  = "messageId_1_created_-1"
	ixRollups    = "kind_1_bucket_1"
	ixTTL        = "created_1"
)

// TestExplainPlans checks, on a real MongoDB, that every query the store
// sends is served from an index: it records the read commands each
// operation sends and asks the server to explain each one. FerretDB plans
// nothing (it scans), so the test needs SENDHOOKS_TEST_MONGODB_URI.
func TestExplainPlans(t *testing.T) {
	uri := os.Getenv(realMongoURI)
	if uri == "" {
		t.Skip("query plans need a real MongoDB: set " + realMongoURI)
	}
	var (
		mu   sync.Mutex
		sent []bson.Raw
	)
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "find", "aggregate", "count", "findAndModify":
			mu.Lock()
			sent = append(sent, slices.Clone(e.Command))
			mu.Unlock()
		}
	}}
	s, err := open(options.Client().ApplyURI(uri).SetMonitor(mon), fmt.Sprintf("sendhooks_explain_%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { s.db.Drop(ctx); s.Close(ctx) })
	if err := s.Setup(ctx, 720*time.Hour); err != nil {
		t.Fatal(err)
	}
	// Enough hooks, of every status, for the planner to tell indexes apart.
	apply(t, s, corpus(400, 11*time.Second), 200, 1)
	hooks := allHooks(t, s)
	mid := hooks[len(hooks)/2]
	failed := []sendhooks.Status{sendhooks.StatusFailed}
	two := []sendhooks.Status{sendhooks.StatusFailed, sendhooks.StatusRetrying}
	from, to := base.Add(17*time.Minute+5*time.Second), base.Add(74*time.Minute+30*time.Second)

	list := func(q monitor.ListQuery) func() error {
		return func() error { _, err := s.List(ctx, q); return err }
	}
	for _, c := range []struct {
		name string
		run  func() error
		// ok are the indexes the commands may use; noSort forbids a
		// blocking SORT stage.
		ok     []string
		noSort bool
	}{
		{"list newest first", list(monitor.ListQuery{Limit: 20, NoTotal: true}), []string{ixCreated}, true},
		{"list offset", list(monitor.ListQuery{Limit: 20, Offset: 100, NoTotal: true}), []string{ixCreated}, true},
		{"list by status", list(monitor.ListQuery{Filter: monitor.Filter{Statuses: failed}, Limit: 20, NoTotal: true}), []string{ixStatus}, true},
		{"list by two statuses", list(monitor.ListQuery{Filter: monitor.Filter{Statuses: two}, Limit: 20, NoTotal: true}), []string{ixStatus}, true},
		{"list created range", list(monitor.ListQuery{Filter: monitor.Filter{CreatedFrom: from, CreatedTo: to}, Limit: 20, NoTotal: true}), []string{ixCreated}, true},
		{"keyset older", list(monitor.ListQuery{Older: monitor.CursorOf(mid), Limit: 20, NoTotal: true}), []string{ixCreated}, true},
		{"keyset older by status", list(monitor.ListQuery{Filter: monitor.Filter{Statuses: two}, Older: monitor.CursorOf(mid), Limit: 20, NoTotal: true}), []string{ixStatus}, true},
		{"keyset newer", list(monitor.ListQuery{Newer: monitor.CursorOf(mid), Limit: 20, NoTotal: true}), []string{ixCreated}, true},
		{"get by id", func() error { _, err := s.Get(ctx, mid.ID); return err }, []string{ixID}, true},
		{"get by webhookId", func() error { _, err := s.Get(ctx, mid.ExternalID); return err }, []string{ixID, ixExternalID}, true},
		{"get by messageId", func() error { _, err := s.Get(ctx, mid.MessageID); return err }, []string{ixID, ixExternalID, ixMessageID}, true},
		{"exact search", list(monitor.ListQuery{Filter: monitor.Filter{Search: mid.ExternalID}, Limit: 20}), []string{ixID, ixExternalID, ixMessageID}, true},
		{"substring search and its window", list(monitor.ListQuery{Filter: monitor.Filter{Search: "hook/1"}, Limit: 20}), []string{ixID, ixExternalID, ixMessageID, ixCreated}, true},
		{"total by statuses and created range", list(monitor.ListQuery{Filter: monitor.Filter{Statuses: two, CreatedFrom: from, CreatedTo: to}, Limit: 1}), []string{ixStatus, ixCreated, ixRollups}, false},
		{"total of everything", list(monitor.ListQuery{Limit: 1}), []string{ixCreated, ixRollups}, true},
		{"delivered range, in the search window", list(monitor.ListQuery{Filter: monitor.Filter{DeliveredFrom: from, DeliveredTo: to}, Limit: 1}), []string{ixCreated}, false},
		{"stats", func() error {
			_, err := s.Stats(ctx, monitor.StatsQuery{From: base, To: base.Add(3 * time.Hour), Bucket: 10 * time.Minute})
			return err
		}, []string{ixRollups}, false},
		{"prune", func() error { _, err := s.Prune(ctx, base.Add(5*time.Minute), 10); return err }, []string{ixCreated, ixTTL, ixID}, true},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			mu.Lock()
			sent = nil
			mu.Unlock()
			if err := c.run(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			cmds := slices.Clone(sent)
			mu.Unlock()
			if len(cmds) == 0 {
				t.Fatal("no query sent")
			}
			for _, cmd := range cmds {
				stages, indexes := explain(t, s, cmd)
				name := cmd.Index(0).Key() + " " + cmd.Lookup(cmd.Index(0).Key()).StringValue()
				if slices.Contains(stages, "COLLSCAN") {
					t.Errorf("%s scans the collection: %v\n%s", name, stages, cmd)
				}
				if c.noSort && slices.Contains(stages, "SORT") {
					t.Errorf("%s sorts in memory: %v\n%s", name, stages, cmd)
				}
				if len(indexes) == 0 {
					t.Errorf("%s uses no index: %v\n%s", name, stages, cmd)
				}
				for _, ix := range indexes {
					if !slices.Contains(c.ok, ix) {
						t.Errorf("%s uses index %s, want one of %v\n%s", name, ix, c.ok, cmd)
					}
				}
				t.Logf("%s: %v on %v", name, stages, indexes)
			}
		})
	}
}

// explain returns the stages and index names of the winning plans of cmd.
func explain(t *testing.T, s *Store, cmd bson.Raw) (stages, indexes []string) {
	t.Helper()
	var doc bson.D
	if err := bson.Unmarshal(cmd, &doc); err != nil {
		t.Fatal(err)
	}
	// What the driver adds to a command is not part of the query.
	doc = slices.DeleteFunc(doc, func(e bson.E) bool {
		switch e.Key {
		case "lsid", "txnNumber", "readConcern", "writeConcern", "maxTimeMS", "apiVersion", "apiStrict", "apiDeprecationErrors":
			return true
		}
		return strings.HasPrefix(e.Key, "$")
	})
	out, err := s.db.RunCommand(context.Background(), bson.D{{Key: "explain", Value: doc}, {Key: "verbosity", Value: "queryPlanner"}}).Raw()
	if err != nil {
		t.Fatalf("explain %s: %v", cmd, err)
	}
	var walk func(v bson.RawValue, inPlan bool)
	walk = func(v bson.RawValue, inPlan bool) {
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			elems, _ := v.Document().Elements()
			for _, e := range elems {
				switch {
				case e.Key() == "rejectedPlans":
					continue
				case inPlan && e.Key() == "stage":
					stage := e.Value().StringValue()
					stages = append(stages, stage)
					if stage == "IDHACK" || stage == "EXPRESS_IXSCAN" || stage == "EXPRESS_CLUSTERED_IXSCAN" {
						indexes = append(indexes, ixID)
					}
				case inPlan && e.Key() == "indexName":
					indexes = append(indexes, e.Value().StringValue())
				}
				walk(e.Value(), inPlan || e.Key() == "winningPlan")
			}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			for _, x := range vals {
				walk(x, inPlan)
			}
		}
	}
	walk(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: out}, false)
	slices.Sort(indexes)
	return stages, slices.Compact(indexes)
}
