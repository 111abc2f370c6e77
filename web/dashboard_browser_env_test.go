package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/monitor"
)

// The browser tests share one headless Chromium, started by the first of
// them; each test opens its own tab.
var browser struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab; tabs are opened from it
	cancel func()
	dir    string
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	if browser.dir != "" {
		os.RemoveAll(browser.dir)
	}
	os.Exit(code)
}

// chromiumPath finds Debian's chromium (or another Chrome on PATH).
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH: the browser tests need Debian's chromium (apt-get install chromium; .ci/run installs it)")
}

func startBrowser() {
	path, err := chromiumPath()
	if err != nil {
		browser.err = err
		return
	}
	if browser.dir, err = os.MkdirTemp("", "sendhooks-chromium-"); err != nil {
		browser.err = err
		return
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(browser.dir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Any host but the loopback test servers fails to resolve
		// (127.0.0.2 serves pages of "another site").
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2"),
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	browser.ctx = ctx
	browser.cancel = func() { cancel(); allocCancel() }
	if err := chromedp.Do(ctx); err != nil {
		browser.err = fmt.Errorf("start chromium %s: %w", path, err)
	}
}

// newTab opens a tab of the shared browser for the test, with a deadline.
func newTab(t *testing.T) context.Context {
	t.Helper()
	browser.once.Do(startBrowser)
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// run runs browser steps and fails the test on an error.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// follow runs steps that load another page (a click on a link or a
// submit) and waits for that page's answer.
func follow(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// followLink clicks the link that selector finds and waits for the page it
// leads to. The click is made in the page, in one step with finding the
// link: the list's table is swapped by its refresh every few seconds, and
// a node found first and clicked next may be gone by then.
func followLink(t *testing.T, ctx context.Context, what, selector string) {
	t.Helper()
	follow(t, ctx, what, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%q).click()", selector)))
}

// waitJS waits until a JavaScript expression is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		page, _ := chromedp.Run(dctx, chromedp.Evaluate[string]("location.href + '\\n' + document.body.innerText"))
		t.Fatalf("waiting until %s (%s): %v\npage: %s", what, expr, err, page)
	}
}

// evalJS evaluates a JavaScript expression.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// darkMode makes the tab prefer a dark (or light) colour scheme.
func darkMode(dark bool) chromedp.Action[chromedp.Void] {
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// screenshot saves a full-page PNG in docs/screenshots/ when
// SENDHOOKS_SCREENSHOTS is set (see docs/dashboard.md).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SENDHOOKS_SCREENSHOTS") == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "screenshots", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// liveDashboard is the dashboard over a real engine run: redis-server,
// the engine, the monitor's ingestion into FerretDB, and a receiver on
// loopback that fails requests to paths holding "fail" while failing is
// set.
type liveDashboard struct {
	*testDashboard
	receiver *httptest.Server
	failing  atomic.Bool
	received sync.Map // path → number of requests
}

func startLive(t *testing.T, configure func(*DashboardConfig)) *liveDashboard {
	t.Helper()
	l := &liveDashboard{}
	l.failing.Store(true)
	l.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n, _ := l.received.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if l.failing.Load() && strings.Contains(r.URL.Path, "fail") {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `receiver down: <script>window.__xss="response"</script><img src=x onerror="window.__xss='img'">`)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(l.receiver.Close)
	l.testDashboard = startDashboard(t, func(_ *testDashboard, c *DashboardConfig) {
		c.Refresh = 300 * time.Millisecond
		if configure != nil {
			configure(c)
		}
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	cfg := engine.Default()
	cfg.Redis.Address = l.redis.Addr()
	cfg.ConsumerName = "browser-test"
	cfg.NumWorkers, cfg.MaxPerHost = 8, 8
	cfg.AllowPrivateNetworks = true // the receiver is on loopback
	cfg.RequestTimeout = 5 * time.Second
	cfg.RetrySchedule = []time.Duration{100 * time.Millisecond}
	rdb := redis.NewClient(&redis.Options{Addr: l.redis.Addr()})
	t.Cleanup(func() { rdb.Close() })
	wg.Go(func() {
		if err := engine.New(cfg, rdb, log).Run(ctx); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	in := monitor.NewIngester(l.rdb, l.store, monitor.NewMetrics(prometheus.NewRegistry()), log,
		sendhooks.DefaultStatusStream, monitor.DefaultConsumerGroup, "browser-test")
	in.Block = 100 * time.Millisecond
	wg.Go(func() { _ = in.Run(ctx) })
	return l
}

// addJob writes a job as a producer would and returns its stream id,
// which is the hook's id.
func (l *liveDashboard) addJob(t *testing.T, doc string) string {
	t.Helper()
	id, err := l.rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: jobStream, Values: []any{sendhooks.StreamField, doc},
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// job is a job document for the receiver's path.
func (l *liveDashboard) job(path, webhookID string) string {
	return fmt.Sprintf(`{"url": %q, "webhookId": %q, "data": {"order": %q}, "metaData": {"tenant": 7}, "secretHash": "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="}`,
		l.receiver.URL+path, webhookID, webhookID)
}

// waitFinal waits until the monitor holds n hooks with a final status.
func (l *liveDashboard) waitFinal(t *testing.T, n int64) {
	t.Helper()
	f := monitor.Filter{Statuses: []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := l.store.List(context.Background(), monitor.ListQuery{Filter: f, Limit: 1})
		if err == nil && page.Total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the monitor holds %d final hooks after 30s, want %d (err %v)", page.Total, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
