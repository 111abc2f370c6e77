package web

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sendhooks/sendhooks/monitor"
)

// crossSiteAttack is a request shaped as a browser sends it when a page
// of another site posts to the API.
type crossSiteAttack struct {
	name   string
	header http.Header
	body   string
	reason string // the description's reason, after "refused: "
}

var crossSiteAttacks = []crossSiteAttack{
	{"HTML form", http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"},
		"Content-Type": {"application/x-www-form-urlencoded"}}, "search=new.example",
		`the browser says a page of another site sent it (Sec-Fetch-Site: cross-site, Origin "http://evil.example"), and ALLOWED_ORIGINS does not name that origin`},
	{"HTML form without fields", http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"},
		"Content-Type": {"application/x-www-form-urlencoded"}}, "",
		`the browser says a page of another site sent it (Sec-Fetch-Site: cross-site, Origin "http://evil.example"), and ALLOWED_ORIGINS does not name that origin`},
	{"no-cors fetch of text", http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"no-cors"},
		"Content-Type": {"text/plain;charset=UTF-8"}}, `{"search":"x"}`,
		`the browser says a page of another site sent it (Sec-Fetch-Site: cross-site, Origin "http://evil.example"), and ALLOWED_ORIGINS does not name that origin`},
	{"sandboxed frame", http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"cross-site"},
		"Content-Type": {"application/x-www-form-urlencoded"}}, "a=1",
		`the browser says a page of another site sent it (Sec-Fetch-Site: cross-site, Origin "null"), and ALLOWED_ORIGINS does not name that origin`},
	{"browser without Sec-Fetch headers", http.Header{"Origin": {"http://evil.example"}, "Content-Type": {"text/plain"}}, "x",
		`it comes from the origin "http://evil.example", which is neither the API's own nor allowed by ALLOWED_ORIGINS`},
	{"look-alike of a listed origin", http.Header{"Origin": {"https://dash.example.evil.example"}, "Content-Type": {"application/json"}}, "{}",
		`it comes from the origin "https://dash.example.evil.example", which is neither the API's own nor allowed by ALLOWED_ORIGINS`},
	{"form without Origin", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "a=1",
		`a request with a body must be JSON (Content-Type: application/json), which an HTML form cannot send; got Content-Type "application/x-www-form-urlencoded"`},
	{"multipart form without Origin", http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, "--x--\r\n",
		`a request with a body must be JSON (Content-Type: application/json), which an HTML form cannot send; got Content-Type "multipart/form-data; boundary=x"`},
	{"text with the custom header", http.Header{"Content-Type": {"text/plain"}, RequestHeader: {"1"}}, "x",
		`a request with a body must be JSON (Content-Type: application/json), which an HTML form cannot send; got Content-Type "text/plain"`},
	{"empty form without Origin", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "",
		"a request without a body must carry the header Sendhooks-Request: 1 (or Content-Type: application/json), which an HTML form cannot send"},
}

// TestSecurityAPICrossSite posts to the API's state-changing routes as a
// page of another site would, with and without an API token: each is
// refused with 403 naming the reason and queues nothing. The API's own
// origin, a named origin, and a client without a browser still retry.
func TestSecurityAPICrossSite(t *testing.T) {
	for _, token := range []string{"", "s3cret-token"} {
		t.Run("token "+map[bool]string{true: "set", false: "unset"}[token != ""], func(t *testing.T) {
			a := startAPI(t, APIConfig{Token: token, AllowedOrigins: []string{"https://dash.example"}})
			seedInjection(t, a)
			routes := []struct {
				path   string
				queues int
			}{
				{"/api/sendhooks/v1/hooks/" + literalHookID + "/retry", 1},
				{"/api/sendhooks/v1/hooks/retry", injectionHooks},
			}
			post := func(path string, h http.Header, body string) (int, string) {
				h = h.Clone()
				if token != "" {
					h.Set("Authorization", "Bearer "+token)
				}
				var r io.Reader
				if body != "" {
					r = strings.NewReader(body)
				}
				status, _, got := rawRequest(t, http.DefaultClient, http.MethodPost, a.srv.URL+path, h, r)
				return status, strings.TrimSpace(got)
			}
			for _, r := range routes {
				for _, at := range crossSiteAttacks {
					status, body := post(r.path, at.header, at.body)
					if want := errorBody(t, "CROSS_SITE_REQUEST", "refused: "+at.reason); status != http.StatusForbidden || body != want {
						t.Errorf("POST %s, %s: %d %s\nwant 403 %s", r.path, at.name, status, body, want)
					}
				}
				if n := queuedJobs(t, a.rdb); n != 0 {
					t.Fatalf("refused requests queued %d jobs", n)
				}
			}

			allowed := []struct {
				name   string
				header http.Header
				body   string
			}{
				{"same-origin JSON", http.Header{"Origin": {a.srv.URL}, "Sec-Fetch-Site": {"same-origin"}, "Content-Type": {"application/json"}}, "{}"},
				{"named origin, JSON", http.Header{"Origin": {"https://dash.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json; charset=utf-8"}}, "{}"},
				{"named origin, empty with the header", http.Header{"Origin": {"https://dash.example"}, "Sec-Fetch-Site": {"cross-site"}, RequestHeader: {"1"}}, ""},
				{"no browser, empty with the header", http.Header{RequestHeader: {"1"}}, ""},
				{"no browser, empty JSON", http.Header{"Content-Type": {"application/json"}}, ""},
			}
			want := int64(0)
			for _, r := range routes {
				for _, ok := range allowed {
					// Each request retries the same hooks again: take back
					// the retry marks the request before left on them.
					hooks, _, err := monitor.Collect(context.Background(), a.store, monitor.Filter{}, 1000)
					if err != nil {
						t.Fatal(err)
					}
					for _, h := range hooks {
						unmarkRetry(t, a.store, h.ID)
					}
					status, body := post(r.path, ok.header, ok.body)
					want += int64(r.queues)
					if status != http.StatusAccepted {
						t.Errorf("POST %s, %s: %d %s, want 202", r.path, ok.name, status, body)
					}
					if n := queuedJobs(t, a.rdb); n != want {
						t.Fatalf("POST %s, %s: the jobs stream holds %d entries, want %d", r.path, ok.name, n, want)
					}
				}
			}
		})
	}
}

// TestSecurityAPICrossSiteWithAnyOrigin checks ALLOWED_ORIGINS=* (the dev
// stack's setting): every origin may read the API, but a page of another
// site still cannot change state through it.
func TestSecurityAPICrossSiteWithAnyOrigin(t *testing.T) {
	a := startAPI(t, APIConfig{AllowedOrigins: []string{"*"}})
	seedInjection(t, a)
	path := "/api/sendhooks/v1/hooks/" + literalHookID + "/retry"
	evil := http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}}
	status, _, body := rawRequest(t, http.DefaultClient, http.MethodPost, a.srv.URL+path, evil, strings.NewReader("{}"))
	want := errorBody(t, "CROSS_SITE_REQUEST", `refused: the browser says a page of another site sent it (Sec-Fetch-Site: cross-site, Origin "http://evil.example"), and ALLOWED_ORIGINS does not name that origin`)
	if status != http.StatusForbidden || strings.TrimSpace(body) != want {
		t.Errorf("cross-site JSON POST: %d %s, want 403 %s", status, body, want)
	}
	sibling := http.Header{"Origin": {"http://localhost:3001"}, "Sec-Fetch-Site": {"same-site"}, "Content-Type": {"application/json"}}
	if status, _, body := rawRequest(t, http.DefaultClient, http.MethodPost, a.srv.URL+path, sibling, strings.NewReader("{}")); status != http.StatusAccepted {
		t.Errorf("same-site JSON POST from another origin: %d %s, want 202", status, body)
	}
	if n := queuedJobs(t, a.rdb); n != 1 {
		t.Fatalf("the jobs stream holds %d entries, want 1", n)
	}
}

// TestAPIServesNoDemoRoutes checks that the demo routes, which queue any
// job, exist only in the dev stack: the monitor's API answers them 404
// and queues nothing.
func TestAPIServesNoDemoRoutes(t *testing.T) {
	a := startAPI(t, APIConfig{})
	job := `{"url":"http://127.0.0.1:1/x","webhookId":"demo","data":{}}`
	json := http.Header{"Content-Type": {"application/json"}}
	for _, path := range []string{"/demo/send", "/demo/receiver/ok", "/demo/", "/api/sendhooks/v1/demo/send"} {
		status, _, body := rawRequest(t, http.DefaultClient, http.MethodPost, a.srv.URL+path, json, strings.NewReader(job))
		if want := errorBody(t, "NOT_FOUND", "Not Found"); status != http.StatusNotFound || strings.TrimSpace(body) != want {
			t.Errorf("POST %s: %d %s, want 404 %s", path, status, body, want)
		}
	}
	if n := queuedJobs(t, a.rdb); n != 0 {
		t.Fatalf("the jobs stream holds %d entries, want 0", n)
	}
}
