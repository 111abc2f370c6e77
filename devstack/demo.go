package devstack

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/web"
)

// DemoSecret signs the sample webhooks; the demo receiver checks it.
const DemoSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// maxDemoBody bounds what the demo endpoints read.
const maxDemoBody = 1 << 20

// demo serves, beside the API, a receiver to send webhooks to and an
// endpoint that enqueues a job, so a first try needs nothing else:
//
//	POST /demo/receiver/ok     answers 200 (and says whether the signature verified)
//	POST /demo/receiver/flaky  answers 503 twice per webhook, then 200
//	POST /demo/receiver/fail   answers 500, always
//	POST /demo/send            XADDs the request body (a job) to the jobs stream
type demo struct {
	rdb  *redis.Client
	base string // http://host:port of the API listener
	log  *slog.Logger

	mu    sync.Mutex
	flaky map[string]int // webhook-id -> requests seen
}

func newDemo(rdb *redis.Client, apiAddr string, log *slog.Logger) *demo {
	return &demo{rdb: rdb, base: "http://" + loopbackAddr(apiAddr), log: log, flaky: map[string]int{}}
}

// loopbackAddr turns a listener address such as [::]:5002 into one a
// client on this machine can use.
func loopbackAddr(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host := addr[:i]
		if host == "" || host == "[::]" || host == "0.0.0.0" {
			return "127.0.0.1" + addr[i:]
		}
	}
	return addr
}

// wrap serves the demo routes and hands everything else to api.
func (d *demo) wrap(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /demo/receiver/{behaviour}", d.receive)
	// Any page the developer visits could post a job here (a form needs
	// no CORS preflight) and have the engine reach this machine's
	// network: only requests of this origin, or of no browser, pass.
	mux.Handle("POST /demo/send", web.RefuseCrossSite(http.HandlerFunc(d.send), nil))
	mux.Handle("/", api)
	return mux
}

func (d *demo) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDemoBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get(engine.HeaderWebhookID)
	verified := d.verify(r.Header, body)
	switch r.PathValue("behaviour") {
	case "ok":
		fmt.Fprintf(w, "received %s; signature verified: %t\n", id, verified)
	case "flaky":
		d.mu.Lock()
		d.flaky[id]++
		n := d.flaky[id]
		d.mu.Unlock()
		if n <= 2 {
			http.Error(w, fmt.Sprintf("flaky receiver: failing request %d of %s on purpose", n, id), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "received %s on request %d; signature verified: %t\n", id, n, verified)
	case "fail":
		http.Error(w, "this demo receiver always fails", http.StatusInternalServerError)
	default:
		http.Error(w, "unknown demo receiver; use ok, flaky or fail", http.StatusNotFound)
	}
}

// verify checks the Standard Webhooks signature as a receiver would.
func (d *demo) verify(h http.Header, body []byte) bool {
	key, err := engine.SigningKey(DemoSecret)
	if err != nil {
		return false
	}
	var ts int64
	if _, err := fmt.Sscan(h.Get(engine.HeaderWebhookTimestamp), &ts); err != nil {
		return false
	}
	want := engine.Sign(key, h.Get(engine.HeaderWebhookID), time.Unix(ts, 0), body)
	for _, sig := range strings.Fields(h.Get(engine.HeaderWebhookSignature)) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

func (d *demo) send(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDemoBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := sendhooks.ParseJob(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, err := d.enqueue(r.Context(), string(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "sent to stream", "id": id})
}

func (d *demo) enqueue(ctx context.Context, job string) (string, error) {
	id, err := d.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: sendhooks.DefaultJobStream, Values: []any{sendhooks.StreamField, job},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("enqueue job: %w", err)
	}
	return id, nil
}

// sampleJob is a job for one of the demo receivers.
func (d *demo) sampleJob(behaviour, webhookID string, n int) string {
	job := map[string]any{
		"url":        d.base + "/demo/receiver/" + behaviour,
		"webhookId":  webhookID,
		"messageId":  fmt.Sprintf("message-%d", n),
		"data":       map[string]any{"order_id": fmt.Sprintf("order-%d", n), "amount": "100.00", "currency": "USD"},
		"secretHash": DemoSecret,
		"metaData":   map[string]any{"source": "sendhooks-dev -demo"},
	}
	raw, _ := json.Marshal(job) // a map of strings and maps: cannot fail
	return string(raw)
}

// sendSamples enqueues a few webhooks: most succeed, one fails twice then
// succeeds, one fails on every attempt.
func (d *demo) sendSamples(ctx context.Context) {
	behaviours := []string{"ok", "ok", "ok", "flaky", "fail"}
	for i, b := range behaviours {
		id := fmt.Sprintf("demo-%s-%d-%d", b, i+1, time.Now().Unix())
		if _, err := d.enqueue(ctx, d.sampleJob(b, id, i+1)); err != nil {
			d.log.Error("demo: could not send a sample webhook", "error", err)
			return
		}
	}
	d.log.Info("demo: sent sample webhooks", "count", len(behaviours))
}
