package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks/internal/redistest"
	"github.com/sendhooks/sendhooks/monitor"
)

// testDashboard is the dashboard on a real Redis and a real SQLite store,
// with a client that keeps cookies and does not follow redirects.
type testDashboard struct {
	redis  *redistest.Server
	rdb    *redis.Client
	store  monitor.Store
	srv    *httptest.Server
	client *http.Client
}

// startDashboard starts the stores and the dashboard; configure may change
// the dashboard's configuration once the stores are known.
func startDashboard(t *testing.T, configure func(*testDashboard, *DashboardConfig)) *testDashboard {
	t.Helper()
	d := &testDashboard{redis: redistest.Start(t)}
	d.rdb = d.redis.Client(t)
	d.store = openStore(t)
	cfg := DashboardConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Health: redisHealth(d.rdb)}
	if configure != nil {
		configure(d, &cfg)
	}
	d.srv = httptest.NewServer(NewDashboard(d.store, monitor.NewRetrier(d.rdb, d.store, jobStream), cfg))
	t.Cleanup(d.srv.Close)
	jar, _ := cookiejar.New(nil)
	d.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return d
}

// redisHealth is the engine-health callback on the engines' Redis, as the
// monitor command wires it.
func redisHealth(rdb *redis.Client) func(context.Context) (EngineHealth, error) {
	return func(ctx context.Context) (EngineHealth, error) {
		return monitor.ReadEngineQueues(ctx, rdb, jobStream, "hooks-status")
	}
}

// get fetches a page and returns its status, header and body.
func (d *testDashboard) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	return d.send(t, http.MethodGet, path, nil)
}

// post sends a form (with the session's CSRF token unless form has one).
func (d *testDashboard) post(t *testing.T, path string, form url.Values) (int, http.Header, string) {
	t.Helper()
	return d.send(t, http.MethodPost, path, form)
}

func (d *testDashboard) send(t *testing.T, method, path string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, d.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token from a page that has a form.
func (d *testDashboard) csrf(t *testing.T, path string) string {
	t.Helper()
	_, _, body := d.get(t, path)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on %s:\n%s", path, body)
	}
	return m[1]
}
