package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/internal/mongotest"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// stack is the engine and the monitor, wired as in production, on a real
// redis-server and the dev stack's SQLite store (or the embedded
// MongoDB-wire server, when mongo is set).
type stack struct {
	api, dashboard string
	rdb            *redis.Client
	redis          *redistest.Server
	mongo          *mongotest.Server
}

// startStack runs the dev stack on its default store, SQLite.
func startStack(t *testing.T) *stack { return runStackOn(t, nil) }

// startStackOnMongo runs the dev stack with -mongodb-uri.
func startStackOnMongo(t *testing.T) *stack { return runStackOn(t, mongotest.Start(t)) }

func runStackOn(t *testing.T, ms *mongotest.Server) *stack {
	t.Helper()
	srv := redistest.Start(t)
	o := Options{
		RedisURL:      "redis://" + srv.Addr(),
		APIAddr:       freeAddr(t),
		DashboardAddr: freeAddr(t),
		DataDir:       t.TempDir(),
		RetrySchedule: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond},
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if ms != nil {
		o.MongoURI = ms.URI()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	s := &stack{api: "http://" + o.APIAddr, dashboard: "http://" + o.DashboardAddr, rdb: srv.Client(t), redis: srv, mongo: ms}
	waitFor(t, "the API to answer", func() bool { return s.get(t, "/readyz", nil) == http.StatusOK })
	return s
}

func (s *stack) get(t *testing.T, path string, into any) int {
	t.Helper()
	resp, err := http.Get(s.api + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (s *stack) send(t *testing.T, job string) string {
	t.Helper()
	id, err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: sendhooks.DefaultJobStream, Values: []any{sendhooks.StreamField, job},
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// hookView is the part of the API's webhook that the tests read.
type hookView struct {
	ID            string `json:"id"`
	ExternalID    string `json:"externalId"`
	Status        string `json:"status"`
	Error         string `json:"error"`
	NumberOfTries int    `json:"numberOfTries"`
	Attempts      []struct {
		Number     int    `json:"number"`
		StatusCode int    `json:"statusCode"`
		Error      string `json:"error"`
	} `json:"attempts"`
}

// waitHook waits until the API shows the hook with the wanted status and
// number of attempts, and returns it.
func (s *stack) waitHook(t *testing.T, id, status string, tries int) hookView {
	t.Helper()
	var h hookView
	waitFor(t, fmt.Sprintf("hook %s %s after %d attempts", id, status, tries), func() bool {
		h = hookView{}
		return s.get(t, "/api/sendhooks/v1/hooks/"+id, &h) == http.StatusOK &&
			h.Status == status && h.NumberOfTries == tries && len(h.Attempts) == tries
	})
	return h
}

func TestDeliveredAndFailedJobsShowInTheAPIWithTheirAttempts(t *testing.T) {
	s := startStack(t)
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ok.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	}))
	defer broken.Close()

	var delivered []string
	for i := range 3 {
		delivered = append(delivered, s.send(t, fmt.Sprintf(`{"url":%q,"webhookId":"ok-%d","data":{"n":%d}}`, ok.URL, i, i)))
	}
	failed := s.send(t, fmt.Sprintf(`{"url":%q,"webhookId":"broken","data":{}}`, broken.URL))

	for i, id := range delivered {
		h := s.waitHook(t, id, "success", 1)
		if h.ExternalID != fmt.Sprintf("ok-%d", i) || h.Attempts[0].StatusCode != 200 {
			t.Errorf("delivered hook %s: %+v", id, h)
		}
	}
	h := s.waitHook(t, failed, "failed", 3)
	for i, a := range h.Attempts {
		if a.Number != i+1 || a.StatusCode != 500 || a.Error != "receiver answered 500 Internal Server Error" {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	var list struct {
		Meta struct {
			TotalItems int `json:"totalItems"`
		} `json:"meta"`
	}
	if s.get(t, "/api/sendhooks/v1/hooks?status=failed", &list); list.Meta.TotalItems != 1 {
		t.Errorf("failed filter: %d hooks, want 1", list.Meta.TotalItems)
	}
}

func TestRetryThroughTheAPIDeliversOnceTheReceiverWorks(t *testing.T) {
	s := startStack(t)
	const secret = DemoSecret
	var working atomic.Bool
	var mu sync.Mutex
	var last http.Header
	var lastBody []byte
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !working.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		last, lastBody = r.Header.Clone(), body
		mu.Unlock()
	}))
	defer receiver.Close()

	id := s.send(t, fmt.Sprintf(`{"url":%q,"webhookId":"retry-me","data":{"a":1},"secretHash":%q}`, receiver.URL, secret))
	s.waitHook(t, id, "failed", 3)

	working.Store(true)
	resp, err := http.Post(s.api+"/api/sendhooks/v1/hooks/"+id+"/retry", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}

	h := s.waitHook(t, id, "success", 4)
	if h.Attempts[3].StatusCode != 200 || h.Error != "" {
		t.Errorf("after the retry: %+v", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(lastBody, []byte(`{"a":1}`)) || last.Get("webhook-id") != "retry-me" {
		t.Errorf("retried delivery: webhook-id %q body %s", last.Get("webhook-id"), lastBody)
	}
	key, _ := engine.SigningKey(secret)
	var ts int64
	fmt.Sscan(last.Get("webhook-timestamp"), &ts)
	if want := engine.Sign(key, "retry-me", time.Unix(ts, 0), lastBody); last.Get("webhook-signature") != want {
		t.Errorf("retried delivery is not signed with the job's secret: %q, want %q", last.Get("webhook-signature"), want)
	}
}

// TestEveryJobLandsOnceThroughRedisAndMongoDBOutages sends a flow of jobs
// through the engine and the monitor while Redis is killed (kill -9, then
// restarted from its append-only file) and, later, MongoDB is stopped and
// started again: every job ends delivered, with one attempt shown once.
func TestEveryJobLandsOnceThroughRedisAndMongoDBOutages(t *testing.T) {
	s := startStackOnMongo(t)
	var requests sync.Map // webhook-id -> *atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		n, _ := requests.LoadOrStore(r.Header.Get("webhook-id"), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
	}))
	defer receiver.Close()

	var ids []string
	send := func(from, to int) {
		for i := from; i < to; i++ {
			ids = append(ids, s.send(t, fmt.Sprintf(`{"url":%q,"webhookId":"flow-%d","data":{"n":%d}}`, receiver.URL, i, i)))
		}
	}
	send(0, 10)
	s.redis.Kill(t)
	s.redis.Restart(t)
	waitFor(t, "Redis to answer again", func() bool { return s.rdb.Ping(context.Background()).Err() == nil })
	send(10, 20)
	s.mongo.Stop(t)
	send(20, 30)
	distinct := func() int {
		n := 0
		requests.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	// Deliveries go on while the monitor cannot write; their events wait
	// in the status stream.
	waitFor(t, "every job delivered while MongoDB is down", func() bool { return distinct() == len(ids) })
	s.mongo.Restart(t)

	for _, id := range ids {
		s.waitHook(t, id, "success", 1)
	}
	var list struct {
		Meta struct {
			TotalItems int `json:"totalItems"`
		} `json:"meta"`
	}
	if s.get(t, "/api/sendhooks/v1/hooks?limit=100", &list); list.Meta.TotalItems != len(ids) {
		t.Errorf("the API lists %d webhooks, want %d", list.Meta.TotalItems, len(ids))
	}
	if n := distinct(); n != len(ids) {
		t.Errorf("the receiver saw %d distinct webhooks, want %d", n, len(ids))
	}
}

// TestAFlowShowsInTheDashboardWhileThePagesAnswer sends a flow of jobs
// through the dev stack on its SQLite store: each is in the API and the
// dashboard within seconds of its delivery, and every page keeps
// answering, with the right figures, while the flow is ingested.
func TestAFlowShowsInTheDashboardWhileThePagesAnswer(t *testing.T) {
	s := startStack(t)
	var delivered atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { delivered.Add(1) }))
	defer receiver.Close()

	const n = 400
	go func() {
		for i := range n {
			job := fmt.Sprintf(`{"url":%q,"webhookId":"flow-%d","data":{"n":%d}}`, receiver.URL, i, i)
			if err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{
				Stream: sendhooks.DefaultJobStream, Values: []any{sendhooks.StreamField, job},
			}).Err(); err != nil {
				t.Errorf("XADD: %v", err)
				return
			}
		}
	}()
	var list struct {
		Data []struct{ ExternalID string }
		Meta struct{ TotalItems int }
	}
	pages := []string{s.dashboard + "/", s.dashboard + "/stats", s.dashboard + "/?search=flow-7", s.api + "/api/sendhooks/v1/stats"}
	waitFor(t, "every job delivered and listed as success", func() bool {
		for _, p := range pages {
			resp, err := http.Get(p)
			if err != nil {
				t.Fatalf("GET %s during the flow: %v", p, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s during the flow: %d", p, resp.StatusCode)
			}
		}
		list.Meta.TotalItems = 0
		s.get(t, "/api/sendhooks/v1/hooks?status=success&limit=1", &list)
		return list.Meta.TotalItems == n
	})
	if got := delivered.Load(); got != n {
		t.Errorf("the receiver got %d requests, want %d", got, n)
	}
	s.get(t, "/api/sendhooks/v1/hooks?search=flow-399", &list)
	if len(list.Data) != 1 || list.Data[0].ExternalID != "flow-399" || list.Meta.TotalItems != 1 {
		t.Errorf("exact search for the last job: %+v", list)
	}
	var stats struct{ Total int }
	if s.get(t, "/api/sendhooks/v1/stats", &stats); stats.Total != n {
		t.Errorf("stats count %d webhooks, want %d", stats.Total, n)
	}
}
