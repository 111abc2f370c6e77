package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/internal/mongotest"
)

func TestMonitor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 300, Requests: 2, Progress: &progress})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	if res.Webhooks != 300 || res.EventsPerSecond <= 0 || res.IngestDuration <= 0 {
		t.Errorf("Webhooks %d, EventsPerSecond %v, IngestDuration %v; want 300 and both positive",
			res.Webhooks, res.EventsPerSecond, res.IngestDuration)
	}
	var names []string
	for _, a := range res.API {
		names = append(names, a.Name)
		if a.P50 <= 0 || a.P95 < a.P50 || a.Max < a.P95 || !strings.HasPrefix(a.Path, "/api/sendhooks/v1/") {
			t.Errorf("API row %+v: want a path under the API and 0 < P50 <= P95 <= Max", a)
		}
	}
	want := []string{"list (first page)", "filter status=failed", "search", "hook by id", "stats"}
	if !slices.Equal(names, want) {
		t.Errorf("API rows %q, want %q", names, want)
	}
	if !strings.Contains(progress.String(), "ingested 300 status events") {
		t.Errorf("progress lacks the ingestion line:\n%s", &progress)
	}
}

func TestMonitorRefusesNoWork(t *testing.T) {
	if _, err := Monitor(context.Background(), MonitorOptions{Webhooks: 0, Requests: 1}); err == nil {
		t.Error("Monitor with no webhooks: no error")
	}
}

// TestMonitorOnAGivenMongoDB measures on a server given by its connection
// string, in a database of its own that is gone afterwards.
func TestMonitorOnAGivenMongoDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv := mongotest.Start(t)
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 50, Requests: 1, Progress: &progress, MongoURI: "mongodb://" + srv.Addr()})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	if res.Webhooks != 50 || len(res.API) != 5 {
		t.Errorf("Webhooks %d, %d API rows; want 50 and 5", res.Webhooks, len(res.API))
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

func TestMonitorRefusesAURIThatIsNotMongoDB(t *testing.T) {
	_, err := Monitor(context.Background(), MonitorOptions{Webhooks: 1, Requests: 1, MongoURI: "http://127.0.0.1:27017"})
	const want = `-mongodb-uri "http://127.0.0.1:27017": want a mongodb:// or mongodb+srv:// connection string`
	if err == nil || err.Error() != want {
		t.Errorf("Monitor with an http URI: %v, want %q", err, want)
	}
}

// TestMonitorSeedsWhatItDoesNotIngest ingests some webhooks and writes the
// rest straight into MongoDB: the API, checked on every answer, must count
// them all.
func TestMonitorSeedsWhatItDoesNotIngest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 200, Ingest: 50, Requests: 1, Progress: &progress})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	if res.Webhooks != 200 || res.Ingested != 50 || len(res.API) != 5 {
		t.Errorf("Webhooks %d, Ingested %d, %d API rows; want 200, 50 and 5", res.Webhooks, res.Ingested, len(res.API))
	}
	for _, want := range []string{"ingested 50 status events", "wrote 150 hooks"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, &progress)
		}
	}
	if _, err := Monitor(ctx, MonitorOptions{Webhooks: 10, Ingest: 11, Requests: 1}); err == nil ||
		err.Error() != "-ingest 11: want 1 to the number of webhooks (10)" {
		t.Errorf("Monitor with more to ingest than webhooks: %v", err)
	}
}
