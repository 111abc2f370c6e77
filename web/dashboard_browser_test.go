package web

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// rows counts the rows of the webhooks table.
const rows = `document.querySelectorAll('#hooks-table tbody tr').length`

// TestBrowserEngineRun drives the dashboard in Chromium over a real engine
// run: the list, its failed filter, paging and live refresh, the detail
// page of a webhook whose receiver failed, its Retry once the receiver
// works, and the stats page's charts.
func TestBrowserEngineRun(t *testing.T) {
	l := startLive(t, nil)
	for i := range 5 {
		l.addJob(t, l.job(fmt.Sprintf("/ok/%d", i), fmt.Sprintf("order-ok-%d", i)))
	}
	failedID := l.addJob(t, l.job("/fail/0", "order-fail-0"))
	l.addJob(t, l.job("/fail/1", "order-fail-1"))
	l.waitFinal(t, 7)
	ctx := newTab(t)

	// The list shows the run; paging by three.
	run(t, ctx, "open the list", chromedp.Navigate(l.srv.URL+"/?limit=3"), chromedp.WaitVisible(chromedp.CSS("#hooks-table tbody tr")))
	if n := evalJS[int](t, ctx, rows); n != 3 {
		t.Fatalf("page 1 has %d rows, want 3", n)
	}
	// The keyboard reaches the skip link first, then the navigation.
	run(t, ctx, "tab", chromedp.KeyEvent("\t"))
	if cls := evalJS[string](t, ctx, `document.activeElement.className`); cls != "skip-link" {
		t.Errorf("the first Tab focuses %q, want the skip link", cls)
	}
	if c := evalJS[string](t, ctx, `document.querySelector('#hooks-table caption').innerText`); c != "7 webhooks" {
		t.Fatalf("caption %q", c)
	}
	followLink(t, ctx, "go to the older page", `a[rel="next"]`)
	waitJS(t, ctx, "the second page shows", `location.search.includes('older=') && `+rows+` === 3 && !!document.querySelector('a[rel="prev"]')`)
	followLink(t, ctx, "go to the oldest page", `a[rel="next"]`)
	waitJS(t, ctx, "the last page shows its one hook", `location.search.includes('older=') && `+rows+` === 1 && !document.querySelector('a[rel="next"]')`)
	followLink(t, ctx, "back to newer", `a[rel="prev"]`)
	waitJS(t, ctx, "the second page shows again", `location.search.includes('newer=') && `+rows+` === 3`)

	// The failed filter narrows the list to the two failures.
	run(t, ctx, "open the list", chromedp.Navigate(l.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#f-status")))
	follow(t, ctx, "filter failed",
		chromedp.SetValue(chromedp.CSS("#f-status"), "failed"),
		chromedp.Click(chromedp.CSS(`form[role="search"] button[type="submit"]`)))
	waitJS(t, ctx, "the failed filter applies", `location.search.includes('status=failed') && `+rows+` === 2`)
	statuses := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#hooks-table tbody .status')].map(e => e.innerText)`)
	if len(statuses) != 2 || statuses[0] != "failed" || statuses[1] != "failed" {
		t.Fatalf("statuses under the failed filter: %v", statuses)
	}

	// The table refreshes itself and keeps the filter and the focus.
	run(t, ctx, "focus the search box", chromedp.Focus(chromedp.CSS("#f-search")))
	l.addJob(t, l.job("/fail/2", "order-fail-2"))
	waitJS(t, ctx, "a new failure appears without reload", rows+` === 3 && location.search.includes('status=failed')`)
	if focus := evalJS[string](t, ctx, `document.activeElement.id`); focus != "f-search" {
		t.Errorf("focus moved to %q during refresh", focus)
	}
	if v := evalJS[string](t, ctx, `document.querySelector('#f-status').value`); v != "failed" {
		t.Errorf("status filter reads %q after refresh", v)
	}

	// A link in the table keeps the focus across refreshes.
	link := `#hooks-table a[href="/hooks/` + failedID + `"]`
	run(t, ctx, "focus a link in the table", chromedp.Focus(chromedp.CSS(link)))
	evalJS[bool](t, ctx, `window.__swaps = 0; document.body.addEventListener('htmx:afterSwap', () => window.__swaps++); true`)
	waitJS(t, ctx, "the table refreshes twice", `window.__swaps >= 2`)
	if ok := evalJS[bool](t, ctx, `document.activeElement.matches('`+link+`')`); !ok {
		t.Errorf("the focused link lost the focus in a refresh (now on %q)", evalJS[string](t, ctx, `document.activeElement.outerHTML`))
	}

	// The detail page of a failed webhook shows its attempts.
	followLink(t, ctx, "open a failed webhook", link)
	run(t, ctx, "see the timeline", chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
	attempts := evalJS[[]string](t, ctx, `[...document.querySelectorAll('ol.timeline > li')].map(e => e.innerText)`)
	if len(attempts) != 2 || !strings.Contains(attempts[0], "HTTP 500") || !strings.Contains(attempts[1], "HTTP 500") {
		t.Fatalf("attempts of a failed webhook: %q", attempts)
	}
	screenshot(t, ctx, "detail")

	// Retry, once the receiver works, delivers it; the page shows it live.
	l.failing.Store(false)
	follow(t, ctx, "retry", chromedp.Click(chromedp.CSS("#retry-button")))
	waitJS(t, ctx, "the retry is confirmed", `document.querySelector('.notice') && document.querySelector('.notice').innerText.includes('attempt 3')`)
	waitJS(t, ctx, "the page shows the success", `document.querySelector('#hook-status').innerText.trim() === 'success'`)
	if n := evalJS[int](t, ctx, `document.querySelectorAll('ol.timeline > li').length`); n != 3 {
		t.Errorf("%d attempts after the retry, want 3", n)
	}
	got, _ := l.received.Load("/fail/0")
	if n := got.(*atomic.Int64).Load(); n != 3 {
		t.Errorf("the receiver got %d requests for the retried webhook, want 3", n)
	}

	// The stats page draws its charts.
	run(t, ctx, "open the stats", chromedp.Navigate(l.srv.URL+"/stats"), chromedp.WaitVisible(chromedp.CSS("#chart-deliveries svg")))
	bars := evalJS[int](t, ctx, `document.querySelectorAll('#chart-deliveries svg rect').length`)
	if bars == 0 {
		t.Fatal("the deliveries chart has no bars")
	}
	desc := evalJS[string](t, ctx, `document.querySelector('#chart-deliveries desc').textContent`)
	if !strings.Contains(desc, "6 succeeded, 2 failed") {
		t.Errorf("deliveries chart text %q", desc)
	}
	for _, id := range []string{"chart-rate", "chart-latency", "chart-endpoints"} {
		if n := evalJS[int](t, ctx, `document.querySelectorAll('#`+id+` svg.hbar rect').length`); n < 2 {
			t.Errorf("#%s draws %d bars, want some", id, n)
		}
	}
	if rate := evalJS[string](t, ctx, `document.querySelector('#chart-rate .hbar-value').innerText`); rate != "75.0%" {
		t.Errorf("success rate reads %q, want 75.0%%", rate)
	}
	if v := evalJS[string](t, ctx, `document.querySelector('#tile-retry-set .value').innerText`); v != "0" {
		t.Errorf("retry set shows %q, want 0", v)
	}
	// Every webhook went to the one receiver, whatever its path.
	if ep := evalJS[string](t, ctx, `document.querySelector('#chart-endpoints').innerText`); !strings.Contains(ep, l.receiver.URL+"\n2 of 8") {
		t.Errorf("failing receivers %q, want %s with 2 of 8", ep, l.receiver.URL)
	}
	screenshot(t, ctx, "stats")
	run(t, ctx, "open the list", chromedp.Navigate(l.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#hooks-table tbody tr")))
	screenshot(t, ctx, "list")
	run(t, ctx, "dark mode", darkMode(true), chromedp.WaitVisible(chromedp.CSS("#hooks-table tbody tr")))
	screenshot(t, ctx, "list-dark")

	// On a phone the pages fit the screen's width.
	run(t, ctx, "phone", darkMode(false), chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, path := range []string{"/", "/hooks/" + failedID, "/stats"} {
		run(t, ctx, "open "+path+" on a phone", chromedp.Navigate(l.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("main")))
		if w := evalJS[int](t, ctx, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
			t.Errorf("%s is %dpx wider than a phone's screen", path, w)
		}
	}
	screenshot(t, ctx, "stats-phone")
}

// TestBrowserXSS sends job data, a URL path, a webhook id and a receiver
// answer holding markup, and checks that the pages show them as text and
// run none of it.
func TestBrowserXSS(t *testing.T) {
	l := startLive(t, nil)
	const script = `<script>window.__xss="data"</script>`
	doc := fmt.Sprintf(`{"url": %q, "webhookId": %q, "data": {"html": %q}, "metaData": {"note": %q}}`,
		l.receiver.URL+`/fail/<script>window.__xss="url"</script>`, `<script>window.__xss="id"</script>`, script,
		`<img src=x onerror="window.__xss='meta'">`)
	id := l.addJob(t, doc)
	l.waitFinal(t, 1)
	ctx := newTab(t)

	run(t, ctx, "open the list", chromedp.Navigate(l.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#hooks-table tbody tr")))
	text := evalJS[string](t, ctx, `document.querySelector('#hooks-table tbody').innerText`)
	if !strings.Contains(text, `<script>window.__xss="id"</script>`) || !strings.Contains(text, `/fail/<script>window.__xss="url"</script>`) {
		t.Fatalf("the list does not show the markup as text:\n%s", text)
	}
	run(t, ctx, "open the webhook", chromedp.Navigate(l.srv.URL+"/hooks/"+id), chromedp.WaitVisible(chromedp.CSS("ol.timeline")),
		chromedp.Click(chromedp.CSS("ol.timeline details summary")))
	page := evalJS[string](t, ctx, `document.body.innerText`)
	for _, want := range []string{`<script>window.__xss=\"data\"</script>`, `onerror=\"window.__xss='meta'\"`, `receiver down: <script>window.__xss="response"</script>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the detail page does not show %s as text:\n%s", want, page)
		}
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('img').length`); n != 0 {
		t.Errorf("the page has %d img elements, want none", n)
	}
	if srcs := evalJS[string](t, ctx, `Array.from(document.scripts).map(s => s.getAttribute('src')).join(' ')`); srcs != "/static/vendor/htmx.min.js /static/app.js" {
		t.Errorf("the page's scripts are %q, want only htmx and the dashboard's own", srcs)
	}
	if v := evalJS[string](t, ctx, `String(window.__xss)`); v != "undefined" {
		t.Fatalf("a payload ran: window.__xss = %s", v)
	}
}

// TestBrowserLogin checks that a dashboard with credentials asks for them
// first and then shows the page asked for.
func TestBrowserLogin(t *testing.T) {
	l := startLive(t, func(c *DashboardConfig) { c.User, c.Password = "admin", "correct horse" })
	l.addJob(t, l.job("/ok/1", "order-1"))
	l.waitFinal(t, 1)
	ctx := newTab(t)

	run(t, ctx, "open the stats", chromedp.Navigate(l.srv.URL+"/stats"), chromedp.WaitVisible(chromedp.CSS("#login-user")))
	if loc := evalJS[string](t, ctx, `location.pathname + location.search`); loc != "/login?next=%2Fstats" {
		t.Fatalf("sent to %s, want the login form", loc)
	}
	screenshot(t, ctx, "login")
	follow(t, ctx, "sign in with a wrong password",
		chromedp.SendKeys(chromedp.CSS("#login-user"), "admin"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "wrong"),
		chromedp.Submit(chromedp.CSS("#login-password")))
	run(t, ctx, "see the refusal", chromedp.WaitVisible(chromedp.CSS(".error-box")))
	follow(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#login-password"), "correct horse"),
		chromedp.Submit(chromedp.CSS("#login-password")))
	run(t, ctx, "see the stats", chromedp.WaitVisible(chromedp.CSS("#chart-deliveries")))
	if who := evalJS[string](t, ctx, `document.querySelector('.session').innerText`); !strings.Contains(who, "Signed in as admin") {
		t.Fatalf("header says %q", who)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll('.open-warning').length`); n != 0 {
		t.Error("the open-dashboard warning shows although credentials are configured")
	}
	follow(t, ctx, "sign out", chromedp.Click(chromedp.CSS(".session button")))
	run(t, ctx, "see the login form", chromedp.WaitVisible(chromedp.CSS("#login-user")))
	run(t, ctx, "open the list signed out", chromedp.Navigate(l.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#login-user")))
}
