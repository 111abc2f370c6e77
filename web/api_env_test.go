package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redistest"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
)

const jobStream = "hooks"

// testAPI is the API on a real Redis and a real SQLite store.
type testAPI struct {
	rdb   *redis.Client
	store monitor.Store
	srv   *httptest.Server
	token string
}

func startAPI(t *testing.T, cfg APIConfig) *testAPI {
	t.Helper()
	return startAPIOn(t, openStore(t), cfg)
}

// startAPIOn starts the API on the store given.
func startAPIOn(t *testing.T, store monitor.Store, cfg APIConfig) *testAPI {
	t.Helper()
	a := &testAPI{store: store, token: cfg.Token}
	a.rdb = redistest.Start(t).Client(t)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Ready = a.store.Ping
	cfg.Metrics = prometheus.NewRegistry()
	a.srv = httptest.NewServer(NewAPI(a.store, monitor.NewRetrier(a.rdb, a.store, jobStream), cfg))
	t.Cleanup(a.srv.Close)
	return a
}

// openStore opens a store on a fresh SQLite file, closed when the test ends.
func openStore(t testing.TB) monitor.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "monitor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if err := s.Setup(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	return s
}

// seed stores the events.
func (a *testAPI) seed(t *testing.T, evs ...sendhooks.StatusEvent) {
	t.Helper()
	batch := make([]monitor.Event, len(evs))
	for i, ev := range evs {
		batch[i] = monitor.Event{StatusEvent: ev}
	}
	if err := a.store.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// do sends a request (with the token, if any) and returns the status
// and body. A POST carries the header the API requires of a request
// without a body, as a client of the API sends it.
func (a *testAPI) do(t *testing.T, method, path string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if method == http.MethodPost {
		req.Header.Set(RequestHeader, "1")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, strings.TrimSpace(string(body))
}

// getJSON GETs path, expects 200 and decodes the body into v.
func (a *testAPI) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	status, _, body := a.do(t, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func ts(s string) sendhooks.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return sendhooks.Time{Time: t}
}

// oldEvent is an event as the old engine wrote it.
func oldEvent(id, url string, status sendhooks.Status, created, delivered string) sendhooks.StatusEvent {
	ev := sendhooks.StatusEvent{WebhookID: id, URL: url, Status: status, Created: ts(created), PayloadSize: 10, NumberOfTries: 1}
	if delivered != "" {
		ev.Delivered = ts(delivered)
	}
	if status == sendhooks.StatusFailed {
		ev.DeliveryError = "receiver answered 500"
	}
	return ev
}

// engineEvent is a new engine's event for one attempt of a job.
func engineEvent(streamID string, attempt int, status sendhooks.Status, durationMs float64) sendhooks.StatusEvent {
	ev := sendhooks.StatusEvent{
		WebhookID: "wh-" + streamID, URL: "https://new.example/hook", Status: status,
		Created: ts("2026-01-02T10:00:00Z"), StreamID: streamID, Attempt: attempt, NumberOfTries: attempt,
		DurationMs: durationMs, StatusCode: 500, DeliveryError: "receiver answered 500",
		Job: `{"url":"https://new.example/hook","webhookId":"wh-` + streamID + `","data":{"a":1},"secretHash":"s3cret"}`,
	}
	if status == sendhooks.StatusSuccess {
		ev.StatusCode, ev.DeliveryError, ev.Delivered = 200, "", ts("2026-01-02T10:05:00Z")
	}
	return ev
}

// errorBody is the error answer's body, as encoding/json writes it.
func errorBody(t *testing.T, code, description string) string {
	t.Helper()
	b, err := json.Marshal(apiError{Code: code, Description: description})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// getJSONPost POSTs to path, expects 202 and decodes the body into v.
func (a *testAPI) getJSONPost(t *testing.T, path string, v any) {
	t.Helper()
	status, _, body := a.do(t, http.MethodPost, path, nil)
	if status != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("POST %s: %v in %s", path, err, body)
	}
}
