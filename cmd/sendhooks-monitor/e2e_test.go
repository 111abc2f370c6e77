package main

import (
	"context"
	"encoding/json"
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
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// receiver counts the requests per webhook-id and fails /flaky while
// failing is set.
type receiver struct {
	failing atomic.Bool
	mu      sync.Mutex
	ok      map[string]int // 2xx answers by webhook-id
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/flaky" && rc.failing.Load() {
		http.Error(w, "database is down", http.StatusInternalServerError)
		return
	}
	rc.mu.Lock()
	rc.ok[r.Header.Get("webhook-id")]++
	rc.mu.Unlock()
	_, _ = io.WriteString(w, "thanks")
}

func (rc *receiver) delivered(id string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.ok[id]
}

// apiHook is the part of the API's webhook the test looks at.
type apiHook struct {
	ID       string `json:"_id"`
	Status   string `json:"status"`
	Attempts []struct {
		Number     int    `json:"number"`
		Status     string `json:"status"`
		StatusCode int    `json:"statusCode"`
		Response   string `json:"response"`
	} `json:"attempts"`
}

func getHook(api, id string) (apiHook, bool) {
	var h apiHook
	resp, err := http.Get(api + "/api/sendhooks/v1/hooks/" + id)
	if err != nil {
		return h, false
	}
	defer resp.Body.Close()
	return h, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&h) == nil
}

// TestEndToEndWithEngine runs the engine in the test and the monitor as a
// process: a delivered and a failed job show up with their attempts, and a
// retry through the API delivers the failed one once its receiver works.
func TestEndToEndWithEngine(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	rc := &receiver{ok: map[string]int{}}
	rc.failing.Store(true)
	target := httptest.NewServer(rc)
	t.Cleanup(target.Close)

	cfg := engine.Default()
	cfg.Redis.Address = rs.Addr()
	cfg.ConsumerName = "e2e-engine"
	cfg.NumWorkers, cfg.MaxPerHost = 4, 4
	cfg.AllowPrivateNetworks = true // the receiver is on loopback
	cfg.RequestTimeout, cfg.VisibilityTimeout, cfg.ShutdownTimeout = 5*time.Second, 10*time.Second, 5*time.Second
	cfg.RetrySchedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}
	cfg, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := engine.New(cfg, rdb, slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	env, api := monitorEnv(t, rs)
	startMonitor(t, env)

	for id, path := range map[string]string{"job-ok": "/ok", "job-flaky": "/flaky"} {
		job := `{"url":"` + target.URL + path + `","webhookId":"` + id + `","data":{"n":1},"secretHash":"whsec_c2VjcmV0"}`
		if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: sendhooks.DefaultJobStream, Values: []any{sendhooks.StreamField, job}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "job-ok delivered, job-flaky failed", func() bool {
		ok, _ := getHook(api, "job-ok")
		flaky, _ := getHook(api, "job-flaky")
		return ok.Status == "success" && flaky.Status == "failed"
	})
	ok, _ := getHook(api, "job-ok")
	if len(ok.Attempts) != 1 || ok.Attempts[0].StatusCode != 200 || ok.Attempts[0].Response != "thanks" {
		t.Fatalf("job-ok: %+v", ok)
	}
	flaky, _ := getHook(api, "job-flaky")
	if len(flaky.Attempts) != 3 {
		t.Fatalf("job-flaky: %+v", flaky)
	}
	for i, a := range flaky.Attempts {
		if a.Number != i+1 || a.StatusCode != 500 {
			t.Fatalf("job-flaky attempt %d: %+v", i+1, a)
		}
	}

	// The receiver works again: a retry through the API delivers the job.
	rc.failing.Store(false)
	resp, err := http.Post(api+"/api/sendhooks/v1/hooks/"+flaky.ID+"/retry", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}
	eventually(t, 30*time.Second, "job-flaky delivered after the retry", func() bool {
		h, _ := getHook(api, flaky.ID)
		return h.Status == "success"
	})
	flaky, _ = getHook(api, flaky.ID)
	if len(flaky.Attempts) != 4 || flaky.Attempts[3].Number != 4 || flaky.Attempts[3].StatusCode != 200 {
		t.Fatalf("job-flaky after the retry: %+v", flaky)
	}
	if n := rc.delivered("job-flaky"); n != 1 {
		t.Fatalf("job-flaky delivered %d times, want 1", n)
	}
	if n := rc.delivered("job-ok"); n != 1 {
		t.Fatalf("job-ok delivered %d times, want 1", n)
	}
}
