package web

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserCrossSiteFormsCannotRetry has headless Chromium open a page
// of another site (http://127.0.0.2, another site than the API's
// 127.0.0.1) whose forms post to the API's retry routes, as an HTML form
// can without a CORS preflight, url-encoded and as text/plain: the
// browser shows the API's 403 refusal, and nothing is queued.
func TestBrowserCrossSiteFormsCannotRetry(t *testing.T) {
	a := startAPI(t, APIConfig{})
	seedInjection(t, a)
	targets := []string{
		a.srv.URL + "/api/sendhooks/v1/hooks/" + literalHookID + "/retry",
		a.srv.URL + "/api/sendhooks/v1/hooks/retry",
	}
	var page strings.Builder
	page.WriteString("<!doctype html><title>another site</title>")
	for i, target := range targets {
		for j, enctype := range []string{"application/x-www-form-urlencoded", "text/plain"} {
			fmt.Fprintf(&page, `<form id="f%d%d" method="post" action="%s" enctype="%s"><input name="a" value="1"><button>go</button></form>`,
				i, j, html.EscapeString(target), enctype)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page.String())
	})}}
	evil.Start()
	t.Cleanup(evil.Close)

	ctx := newTab(t)
	for i := range targets {
		for j := range 2 {
			form := fmt.Sprintf("#f%d%d", i, j)
			run(t, ctx, "open the other site's page", chromedp.Navigate(evil.URL+"/"), chromedp.WaitVisible(chromedp.CSS(form+" button")))
			follow(t, ctx, "submit "+form, chromedp.Click(chromedp.CSS(form+" button")))
			shown := evalJS[string](t, ctx, "location.href + ' ' + document.body.innerText")
			u, _ := url.Parse(targets[i])
			if !strings.HasPrefix(shown, targets[i]+" ") || !strings.Contains(shown, `"code":"CROSS_SITE_REQUEST"`) ||
				!strings.Contains(shown, `(Sec-Fetch-Site: cross-site, Origin \"`+evil.URL+`\")`) {
				t.Errorf("form %s to %s: the browser shows %q, want the API's CROSS_SITE_REQUEST refusal of a cross-site request", form, u.Path, shown)
			}
		}
	}
	if n := queuedJobs(t, a.rdb); n != 0 {
		t.Fatalf("forms of another site queued %d jobs", n)
	}
}

// TestBrowserLoginNextStaysOnSite has headless Chromium follow the login
// form's redirect for sign-in targets that a browser repairs into another
// host (a tab, a backslash): it stays on the dashboard.
func TestBrowserLoginNextStaysOnSite(t *testing.T) {
	d := startDashboard(t, nil)
	ctx := newTab(t)
	for _, next := range []string{"/\t/evil.example/", "/\\evil.example/", "/\t\\evil.example/"} {
		follow(t, ctx, "open /login?next="+next, chromedp.Navigate(d.srv.URL+"/login?next="+url.QueryEscape(next)))
		if href := evalJS[string](t, ctx, "location.href"); href != d.srv.URL+"/" {
			t.Errorf("/login?next=%q took the browser to %q, want %s/", next, href, d.srv.URL)
		}
	}
}
