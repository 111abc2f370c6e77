package web

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/templates/list"
)

// seedDashboard stores three failed hooks, two successes and an old
// engine's failure, created one minute apart.
func seedDashboard(t *testing.T, d *testDashboard) {
	t.Helper()
	a := &testAPI{store: d.store}
	var evs []sendhooks.StatusEvent
	for i, st := range []sendhooks.Status{"failed", "success", "failed", "success", "failed"} {
		ev := engineEvent("17673480000"+string(rune('0'+i))+"0-0", 2, st, 10)
		ev.Created = ts("2026-01-02T10:0" + string(rune('0'+i)) + ":00Z")
		evs = append(evs, ev)
	}
	evs = append(evs, oldEvent("old-1", "https://old.example/x", sendhooks.StatusFailed, "2026-01-02T09:00:00Z", ""))
	a.seed(t, evs...)
}

// rowIDs are the hook ids of a list page, in order.
func rowIDs(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<a id="hook-[0-9a-f]+" href="/hooks/([^"]+)"`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestDashboardList(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)

	status, header, body := d.get(t, "/")
	if status != http.StatusOK || len(rowIDs(body)) != 6 || !strings.Contains(body, "6 webhooks") {
		t.Fatalf("list: %d, rows %v\n%s", status, rowIDs(body), body)
	}
	if !strings.Contains(body, "Open dashboard") {
		t.Error("no open-dashboard warning without credentials")
	}
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	_, _, body = d.get(t, "/?status=failed&limit=2")
	older := regexp.MustCompile(`href="(/\?limit=2&amp;older=[^"&]+&amp;status=failed)" rel="next"`).FindStringSubmatch(body)
	if got := rowIDs(body); len(got) != 2 || got[0] != "1767348000040-0" || got[1] != "1767348000020-0" ||
		!strings.Contains(body, "4 webhooks") || older == nil || strings.Contains(body, `rel="prev"`) {
		t.Fatalf("failed, first page: rows %v\n%s", got, body)
	}
	next := html.UnescapeString(older[1])
	_, _, body = d.get(t, next)
	if got := rowIDs(body); len(got) != 2 || got[1] != "old-1" || !strings.Contains(body, `rel="prev"`) || strings.Contains(body, `rel="next"`) {
		t.Fatalf("failed, older page: rows %v\n%s", got, body)
	}
	// The live table keeps the filters and the position.
	live := "/partials/hooks?" + strings.TrimPrefix(next, "/?")
	if !strings.Contains(body, `hx-get="`+html.EscapeString(live)+`"`) {
		t.Errorf("live table URL lost the filters or the position (%s):\n%s", live, body)
	}
	status, _, frag := d.get(t, live)
	if status != http.StatusOK || strings.Contains(frag, "<html") || len(rowIDs(frag)) != 2 {
		t.Fatalf("table fragment: %d\n%s", status, frag)
	}
	// The old page parameter still works.
	if _, _, body = d.get(t, "/?status=failed&limit=2&page=2"); len(rowIDs(body)) != 2 || rowIDs(body)[1] != "old-1" {
		t.Fatalf("failed, page 2: rows %v", rowIDs(body))
	}

	_, _, body = d.get(t, "/?search=OLD.example")
	if got := rowIDs(body); len(got) != 1 || got[0] != "old-1" {
		t.Fatalf("search: rows %v", got)
	}
	_, _, body = d.get(t, "/?createdStartDate=2026-01-02&createdEndDate=2026-01-02&deliveredStartDate=2026-01-02")
	if got := rowIDs(body); len(got) != 2 {
		t.Fatalf("delivered on 2026-01-02: rows %v", got)
	}

	status, _, body = d.get(t, "/?status=nope")
	if status != http.StatusBadRequest || !strings.Contains(body, "status must be success, failed or retrying") {
		t.Fatalf("bad status filter: %d\n%s", status, body)
	}
}

func TestDashboardHookPageAndRetry(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)
	const id = "1767348000000-0"

	status, _, body := d.get(t, "/hooks/"+id)
	for _, want := range []string{"status-failed", "Attempt 2", "HTTP 500", "&#34;a&#34;: 1", `action="/hooks/` + id + `/retry"`} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("detail page: %d, no %q\n%s", status, want, body)
		}
	}
	if strings.Contains(body, "s3cret") {
		t.Fatal("the detail page shows the job's secretHash")
	}
	status, _, body = d.get(t, "/hooks/no-such-hook")
	if status != http.StatusNotFound || !strings.Contains(body, "Webhook not found") || !strings.Contains(body, "no-such-hook") {
		t.Fatalf("unknown id: %d\n%s", status, body)
	}
	status, _, _ = d.get(t, "/partials/hooks/"+id)
	if status != http.StatusOK {
		t.Fatalf("live fragment: %d", status)
	}

	// Ids an older engine took from producers may hold any character.
	for _, odd := range []string{"a b/<c>?d#e", "100%", "ünï"} {
		a := &testAPI{store: d.store}
		a.seed(t, oldEvent(odd, "https://odd.example/", sendhooks.StatusSuccess, "2026-01-02T08:00:00Z", "2026-01-02T08:00:01Z"))
		status, _, body := d.get(t, string(list.HookURL(odd)))
		if status != http.StatusOK || !strings.Contains(body, "https://odd.example/") {
			t.Errorf("hook %q at %s: %d", odd, list.HookURL(odd), status)
		}
	}

	// A POST without the session's token is refused and queues nothing.
	if status, _, _ := d.post(t, "/hooks/"+id+"/retry", url.Values{"csrf": {"forged"}}); status != http.StatusForbidden {
		t.Fatalf("retry with a forged token: %d, want 403", status)
	}
	if n := d.rdb.XLen(context.Background(), jobStream).Val(); n != 0 {
		t.Fatalf("%d jobs queued by a forged POST", n)
	}
	token := d.csrf(t, "/hooks/"+id)
	status, header, _ := d.post(t, "/hooks/"+id+"/retry", url.Values{"csrf": {token}})
	if status != http.StatusSeeOther || header.Get("Location") != "/hooks/"+id+"?queued=3" {
		t.Fatalf("retry: %d to %q", status, header.Get("Location"))
	}
	if n := d.rdb.XLen(context.Background(), jobStream).Val(); n != 1 {
		t.Fatalf("%d jobs queued, want 1", n)
	}
	_, _, body = d.get(t, "/hooks/"+id+"?queued=3")
	if !strings.Contains(body, "Queued for retry as attempt 3") {
		t.Fatalf("no notice after retry:\n%s", body)
	}

	// An old engine's hook cannot be retried: the page says why.
	status, _, body = d.post(t, "/hooks/old-1/retry", url.Values{"csrf": {token}})
	if status != http.StatusConflict || !strings.Contains(body, "did not report the job&#39;s payload") {
		t.Fatalf("retry of an old engine's hook: %d\n%s", status, body)
	}
}

// TestDashboardBulkRetryConfirmsACountAtItsBound checks the confirmation
// of a bulk retry whose count stopped at a bound: 1,001 failed webhooks
// share one webhookId, and an exact-id search counts up to
// monitor.MaxExactMatches of them, as many as a bulk retry queues: the
// page says that more may match and only the newest are retried.
func TestDashboardBulkRetryConfirmsACountAtItsBound(t *testing.T) {
	d := startDashboard(t, nil)
	a := &testAPI{store: d.store}
	evs := make([]sendhooks.StatusEvent, 0, maxBulkRetry+1)
	for i := range maxBulkRetry + 1 {
		ev := engineEvent(fmt.Sprintf("1767348%06d-0", i), 1, sendhooks.StatusFailed, 10)
		ev.WebhookID = "order-dup"
		evs = append(evs, ev)
	}
	a.seed(t, evs...)
	status, _, body := d.get(t, "/retry-failed?search=order-dup")
	if status != http.StatusOK || !strings.Contains(body, "<strong>1000</strong> failed webhooks match") ||
		!strings.Contains(body, "More than 1000 may match; only the newest 1000 are retried now.") {
		t.Fatalf("confirmation of a count at its bound: %d\n%s", status, body)
	}
}

func TestDashboardBulkRetry(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)

	status, _, body := d.get(t, "/retry-failed?search=new.example&limit=2")
	if status != http.StatusOK || !strings.Contains(body, "<strong>3</strong> failed webhooks match") ||
		!strings.Contains(body, `name="search" value="new.example"`) {
		t.Fatalf("confirmation: %d\n%s", status, body)
	}
	if n := d.rdb.XLen(context.Background(), jobStream).Val(); n != 0 {
		t.Fatalf("the confirmation page queued %d jobs", n)
	}
	_, _, body = d.get(t, "/retry-failed?status=success")
	if !strings.Contains(body, "No failed webhooks match") {
		t.Fatalf("confirmation for successes:\n%s", body)
	}
	if strings.Contains(body, "may match") || strings.Contains(body, "looked through") {
		t.Fatalf("a confirmation with an exact count speaks of more:\n%s", body)
	}

	token := d.csrf(t, "/retry-failed")
	if status, _, _ := d.post(t, "/retry-failed", url.Values{"search": {"new.example"}}); status != http.StatusForbidden {
		t.Fatalf("bulk retry without token: %d, want 403", status)
	}
	status, header, _ := d.post(t, "/retry-failed", url.Values{"csrf": {token}})
	if want := "/?queued=3&skipped=1"; status != http.StatusSeeOther || header.Get("Location") != want {
		t.Fatalf("bulk retry: %d to %q, want %s", status, header.Get("Location"), want)
	}
	if n := d.rdb.XLen(context.Background(), jobStream).Val(); n != 3 {
		t.Fatalf("%d jobs queued, want 3", n)
	}
	_, _, body = d.get(t, "/?queued=3&skipped=1")
	if !strings.Contains(body, "3 failed webhooks queued for retry; 1 could not be retried") ||
		!strings.Contains(body, `hx-get="/partials/hooks?"`) {
		t.Fatalf("list after bulk retry:\n%s", body)
	}
	// A bulk retry whose search stopped at the end of its window
	// (monitor.Collect) says so, and links drop the report.
	_, _, body = d.get(t, "/?search=new.example&queued=2&skipped=0&searchPartial=1")
	want := `<p class="notice" role="status">2 failed webhooks queued for retry. The search looked through the newest 100,000 ` +
		`failed webhooks of these filters only: older ones may match too (narrow the created dates to reach them).</p>`
	if !strings.Contains(body, want) || strings.Contains(body, "searchPartial=") {
		t.Fatalf("list after a bulk retry that stopped at its window: no %s, or a link keeps the report:\n%s", want, body)
	}
}

// TestDashboardBulkRetryBannerShowsNumbersOnly opens the list with the
// bulk retry's report carrying text: a link anyone can send, so the
// banner shows the counts as numbers, or nothing.
func TestDashboardBulkRetryBannerShowsNumbersOnly(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)
	const lure = "Your session has expired, call +1 555 0100"
	for query, want := range map[string]string{
		"queued=" + url.QueryEscape("0. "+lure):                     "",
		"queued=" + url.QueryEscape(lure):                           "",
		"queued=-1":                                                 "",
		"queued=2&skipped=" + url.QueryEscape("1. "+lure):           "2 failed webhooks queued for retry.",
		"queued=%2B3&skipped=01":                                    "3 failed webhooks queued for retry; 1 could not be retried (the engine did not report their payload).",
		"queued=4&skipped=0":                                        "4 failed webhooks queued for retry.",
		"queued=5&skipped=2&searchPartial=" + url.QueryEscape(lure): "5 failed webhooks queued for retry; 2 could not be retried (the engine did not report their payload).",
	} {
		status, _, body := d.get(t, "/?"+query)
		if status != http.StatusOK || strings.Contains(body, "session has expired") {
			t.Errorf("/?%s: %d, or the banner shows the link's text\n%s", query, status, body)
			continue
		}
		got := "" // no banner
		if m := regexp.MustCompile(`<p class="notice" role="status">([^<]*)</p>`).FindStringSubmatch(body); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("/?%s: banner %q, want %q", query, got, want)
		}
	}
}

func TestDashboardStats(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)
	status, _, body := d.get(t, "/stats?range=7d")
	for _, want := range []string{`id="chart-deliveries"`, "<svg", `id="tile-retry-set"`, "Receivers failing most"} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("stats: %d, no %q\n%s", status, want, body)
		}
	}
	// The stream lengths, as Redis has them.
	for i := range 3 {
		if err := d.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: "hooks-dead", Values: []any{"data", strconv.Itoa(i)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_, _, body = d.get(t, "/stats")
	for _, want := range []string{
		`<div class="panel tile" id="tile-stream-hooks"><div class="value">0</div><div class="label">Stream hooks</div>`,
		`<div class="panel tile" id="tile-stream-hooks-dead"><div class="value">3</div><div class="label">Stream hooks-dead</div>`,
		`id="tile-stream-hooks-status"`, `id="tile-stream-hooks-status-rejected"`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("stats: no %q\n%s", want, body)
		}
	}
	if status, _, body := d.get(t, "/stats?range=2y"); status != http.StatusBadRequest || !strings.Contains(body, "range must be") {
		t.Fatalf("bad range: %d\n%s", status, body)
	}

	// Redis gone: the page still answers and says the figures are missing.
	d.redis.Kill(t)
	status, _, body = d.get(t, "/stats")
	if status != http.StatusOK || !strings.Contains(body, "Redis did not answer") {
		t.Fatalf("stats without Redis: %d\n%s", status, body)
	}
}

func TestDashboardServerFault(t *testing.T) {
	var logs strings.Builder
	d := startDashboard(t, func(_ *testDashboard, c *DashboardConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	// A closed store fails every query, as one that is gone does.
	if err := d.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	status, _, body := d.get(t, "/")
	if status != http.StatusInternalServerError || !strings.Contains(body, "Something went wrong") || strings.Contains(body, "sql") {
		t.Fatalf("list with the store gone: %d\n%s", status, body)
	}
	if n := strings.Count(logs.String(), "dashboard request failed"); n != 1 {
		t.Fatalf("the fault was logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestDashboardLogin(t *testing.T) {
	d := startDashboard(t, func(_ *testDashboard, c *DashboardConfig) {
		c.User, c.Password, c.Secure = "admin", "correct horse", false
	})
	seedDashboard(t, d)

	for i, path := range []string{"/", "/hooks/old-1", "/stats"} {
		status, header, _ := d.get(t, path)
		ck := header.Get("Set-Cookie")
		if i == 0 && (!strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") || !strings.HasPrefix(ck, "sendhooks_session=")) {
			t.Errorf("session cookie %q", ck)
		}
		if status != http.StatusSeeOther || header.Get("Location") != "/login?next="+url.QueryEscape(path) {
			t.Fatalf("%s without a session: %d to %q", path, status, header.Get("Location"))
		}
	}
	req, _ := http.NewRequest(http.MethodGet, d.srv.URL+"/partials/hooks", nil)
	req.Header.Set("HX-Request", "true")
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/login?next=%2F" {
		t.Fatalf("htmx poll without a session: %d, HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}

	status, _, body := d.get(t, "/login?next=/stats")
	if status != http.StatusOK || strings.Contains(body, "Open dashboard") {
		t.Fatalf("login form: %d\n%s", status, body)
	}
	token := csrfInput.FindStringSubmatch(body)[1]
	if status, _, _ := d.post(t, "/login", url.Values{"user": {"admin"}, "password": {"correct horse"}}); status != http.StatusForbidden {
		t.Fatalf("login without CSRF token: %d, want 403", status)
	}
	status, _, body = d.post(t, "/login", url.Values{"csrf": {token}, "user": {"admin"}, "password": {"wrong"}, "next": {"/stats"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "Wrong user or password") {
		t.Fatalf("wrong password: %d\n%s", status, body)
	}
	status, header, _ := d.post(t, "/login", url.Values{"csrf": {token}, "user": {"admin"}, "password": {"correct horse"}, "next": {"//evil.example/"}})
	if status != http.StatusSeeOther || header.Get("Location") != "/" {
		t.Fatalf("login with an outside next: %d to %q, want /", status, header.Get("Location"))
	}
	status, _, body = d.get(t, "/")
	if status != http.StatusOK || !strings.Contains(body, "Signed in as <strong>admin</strong>") || len(rowIDs(body)) != 6 {
		t.Fatalf("list once signed in: %d\n%s", status, body)
	}
	// The session changed at login, so the old token no longer works.
	if status, _, _ := d.post(t, "/logout", url.Values{"csrf": {token}}); status != http.StatusForbidden {
		t.Fatalf("logout with the token from before login: %d, want 403", status)
	}
	token = csrfInput.FindStringSubmatch(body)[1]
	if status, header, _ := d.post(t, "/logout", url.Values{"csrf": {token}}); status != http.StatusSeeOther || header.Get("Location") != "/login" {
		t.Fatalf("logout: %d to %q", status, header.Get("Location"))
	}
	if status, _, _ := d.get(t, "/"); status != http.StatusSeeOther {
		t.Fatalf("list after logout: %d, want a redirect to the login form", status)
	}
}

func TestDashboardLoginThrottle(t *testing.T) {
	d := startDashboard(t, func(_ *testDashboard, c *DashboardConfig) { c.User, c.Password = "admin", "correct horse" })
	token := d.csrf(t, "/login")
	for i := range maxFailedLogins {
		if status, _, _ := d.post(t, "/login", url.Values{"csrf": {token}, "user": {"admin"}, "password": {"guess"}}); status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, status)
		}
	}
	status, _, body := d.post(t, "/login", url.Values{"csrf": {token}, "user": {"admin"}, "password": {"correct horse"}})
	if status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("sign-in after %d failures: %d, want 429", maxFailedLogins, status)
	}
}

func TestDashboardSecureCookie(t *testing.T) {
	d := startDashboard(t, func(_ *testDashboard, c *DashboardConfig) { c.Secure = true })
	_, header, _ := d.get(t, "/")
	if ck := header.Get("Set-Cookie"); !strings.HasPrefix(ck, "__Host-sendhooks_session=") || !strings.Contains(ck, "Secure") {
		t.Fatalf("cookie with Secure set: %q", ck)
	}
}

func TestDashboardStaticAssets(t *testing.T) {
	d := startDashboard(t, nil)
	status, header, css := d.get(t, "/static/app.css")
	if status != http.StatusOK || !strings.HasPrefix(header.Get("Content-Type"), "text/css") || !strings.Contains(css, "prefers-color-scheme: dark") {
		t.Fatalf("app.css: %d %s", status, header.Get("Content-Type"))
	}
	status, _, js := d.get(t, "/static/vendor/htmx.min.js")
	if status != http.StatusOK {
		t.Fatalf("htmx: %d", status)
	}
	// The copied htmx is the version package.json pins.
	pkg, err := os.ReadFile("../package.json")
	if err != nil {
		t.Fatal(err)
	}
	pin := regexp.MustCompile(`"htmx.org": "([0-9.]+)"`).FindSubmatch(pkg)
	if pin == nil || !strings.Contains(js, `version:"`+string(pin[1])+`"`) {
		t.Fatalf("static/vendor/htmx.min.js is not htmx.org %s as package.json pins; run npm ci && npm run vendor", pin)
	}
	if status, _, body := d.get(t, "/nowhere"); status != http.StatusNotFound || !strings.Contains(body, "Page not found") {
		t.Fatalf("unknown page: %d\n%s", status, body)
	}
}

func TestLoadDashboardConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := LoadDashboardConfig(env(EnvDashboardUser, "admin", EnvDashboardPassword, "pw", EnvDashboardSecure, "true"))
	if err != nil || c.User != "admin" || c.Password != "pw" || !c.Secure {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range [][]string{
		{EnvDashboardUser, "admin"},
		{EnvDashboardPassword, "pw"},
		{EnvDashboardSecure, "maybe"},
		{EnvDashboardSecret, "short"},
	} {
		if _, err := LoadDashboardConfig(env(bad...)); err == nil || !strings.Contains(err.Error(), "SENDHOOKS_DASHBOARD_") {
			t.Errorf("%v: error %v, want one naming the variable", bad, err)
		}
	}
	if c, err := LoadDashboardConfig(env()); err != nil || c.User != "" {
		t.Fatalf("empty environment: %+v %v", c, err)
	}
}

// TestDashboardEmptyHookIDFindsNothing sends the retry of one webhook an
// empty id: the engine's hooks carry no messageId when the producer gave
// none, and "" must not retry one of them. (GET /hooks/ and
// /partials/hooks/ are the list's, with a trailing slash.)
func TestDashboardEmptyHookIDFindsNothing(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)
	token := d.csrf(t, "/retry-failed")
	status, _, body := d.post(t, "/hooks//retry", url.Values{"csrf": {token}})
	want := `<p>No webhook has the id <code></code>.`
	if status != http.StatusNotFound || !strings.Contains(body, "<h1>Webhook not found</h1>") || !strings.Contains(body, want) {
		t.Errorf("POST /hooks//retry: %d, want 404 and the not-found page\n%s", status, body)
	}
	if n := d.rdb.XLen(context.Background(), jobStream).Val(); n != 0 {
		t.Fatalf("%d jobs queued by the empty id, want 0", n)
	}
}
