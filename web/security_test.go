package web

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// The security tests attack the API and the dashboard over real HTTP, on a
// real Redis and an embedded FerretDB: NoSQL-operator injection, oversized
// requests and auth bypasses here; stored XSS, CSRF and the dashboard's
// sessions in security_dashboard_test.go.

// rawRequest sends a request exactly as given (path, headers, body) with
// client and returns the status, header and body.
func rawRequest(t *testing.T, client *http.Client, method, target string, header http.Header, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// queuedJobs is how many entries the jobs stream holds: every retry is one
// XADD there, so an action that did not happen leaves it unchanged.
func queuedJobs(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), jobStream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// literalHookID is the hook whose producer id holds every injection probe
// as text: read as plain text each probe selects it alone, read as an
// operator or a pattern each would select all three seeded hooks.
const (
	literalHookID   = "1767348000002-0"
	literalWebhook  = `lit {"$gt":""} .* $where`
	injectionHooks  = 3
	listAllowed     = "page, limit, older, newer, status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search"
	bulkAllowed     = "status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search"
	dashboardAllows = "page, limit, older, newer, queued, skipped, searchPartial, status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search"
)

// seedInjection stores three failed, retriable hooks; only the third's
// producer id holds the probes.
func seedInjection(t *testing.T, a *testAPI) {
	t.Helper()
	var evs []sendhooks.StatusEvent
	for i := range injectionHooks {
		ev := engineEvent(fmt.Sprintf("176734800000%d-0", i), 2, sendhooks.StatusFailed, 10)
		if ev.StreamID == literalHookID {
			ev.WebhookID = literalWebhook
		}
		evs = append(evs, ev)
	}
	a.seed(t, evs...)
}

// injection is one attack through the query string (or a form): either it
// is refused with 400 and a description naming the parameter, or its
// values are read as plain text and select the literal hook alone.
type injection struct {
	query string
	// operator is the parameter refused everywhere as shaped like an
	// operator; unknown the plain parameter refused as unknown by the bulk
	// retries, which change state, and ignored by the routes that read;
	// desc the description of any other refusal. All empty: selects the
	// literal hook only, everywhere.
	operator, unknown, desc string
}

var injections = []injection{
	{query: "status[$ne]=x", operator: "status[$ne]"},
	{query: "createdStartDate[$gt]=", operator: "createdStartDate[$gt]"},
	{query: "search[$regex]=.*", operator: "search[$regex]"},
	{query: "status.$ne=x", operator: "status.$ne"},
	{query: "search.$regex=.*", operator: "search.$regex"},
	{query: "$where=sleep(1000)", operator: "$where"},
	{query: "status%5B%5D=failed", operator: "status[]"},
	{query: "search%7B%7D=x", operator: "search{}"},
	{query: "search%20=x", operator: "search "},
	{query: "search=$where&_=1716544800000&%24or=1", operator: "$or"},
	{query: "Status=success&search=$where", desc: `unknown parameter "Status": names are case-sensitive, did you mean status?`},
	{query: "status=$ne", desc: `status must be success, failed or retrying (or a comma list of them), got "$ne"`},
	{query: "search=" + url.QueryEscape(`{"$gt":""}`)},
	{query: "search=.*"},
	{query: "search=$where"},
	// A cache-buster and other plain names are ignored where the old API
	// ignored them; the bulk retries refuse them, since a misspelt filter
	// ignored there would retry more webhooks than meant.
	{query: "search=$where&_=1716544800000", unknown: "_"},
	{query: "search=.*&utm_source=mail&serach=x", unknown: "serach"},
	{query: "status=failed&status=success", desc: "status must be given once, got 2 values"},
	{query: "search=.*&search=x", desc: "search must be given once, got 2 values"},
	{query: "search=a%00b", desc: `search must be UTF-8 text without NUL characters, got "a\x00b"`},
	{query: "search=%FF", desc: `search must be UTF-8 text without NUL characters, got "\xff"`},
	{query: "status=failed%00", desc: `status must be success, failed or retrying (or a comma list of them), got "failed\x00"`},
	{query: "createdStartDate=2026-01-01%00", desc: `createdStartDate must be ` + dateForms + `, got "2026-01-01\x00"`},
	// url.Values drops pairs it cannot read; a dropped filter would
	// select every hook, so such a query is refused whole.
	{query: "search=.*;x", desc: "the query string or form does not parse: invalid semicolon separator in query"},
	{query: "search=.*&x=%zz", desc: `the query string or form does not parse: invalid URL escape "%zz"`},
}

// description is the 400 answer's description on a route allowing
// allowed, which refuses unknown parameters when strict.
func (in injection) description(allowed string, strict bool) string {
	switch {
	case in.operator != "":
		return fmt.Sprintf("parameter %q is refused: its name is shaped as an operator or a field path "+
			"(a name holds letters, digits, _ and - only); allowed: %s", in.operator, allowed)
	case in.unknown != "" && strict:
		return fmt.Sprintf("unknown parameter %q; allowed: %s", in.unknown, allowed)
	}
	return in.desc
}

func (in injection) refused(strict bool) bool {
	return in.operator != "" || in.desc != "" || (in.unknown != "" && strict)
}

// TestSecurityQueryInjection sends each injection to every route that reads
// filters: the JSON list, the JSON bulk retry, the dashboard's list, its
// live table and its bulk retry form. Refusals queue nothing; literal reads
// list and retry the literal hook alone.
func TestSecurityQueryInjection(t *testing.T) {
	a := startAPI(t, APIConfig{})
	seedInjection(t, a)
	d := startDashboard(t, nil)
	seedInjection(t, &testAPI{store: d.store})
	token := d.csrf(t, "/retry-failed")

	for _, in := range injections {
		t.Run(in.query, func(t *testing.T) {
			status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks?"+in.query, nil)
			checkAPIInjection(t, "API list", in, listAllowed, false, http.StatusOK, status, body,
				`{"data":[{"_id":"`+literalHookID+`"`, `"meta":{"totalItems":1,`)

			// Each case retries the literal hook again: take back the
			// retry mark the case before left on it.
			unmarkRetry(t, a.store, literalHookID)
			unmarkRetry(t, d.store, literalHookID)
			before := queuedJobs(t, a.rdb)
			status, _, body = a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/retry?"+in.query, nil)
			checkAPIInjection(t, "API bulk retry", in, bulkAllowed, true, http.StatusAccepted, status, body,
				`{"matched":1,"queued":1,"skipped":0,"truncated":false,"hooks":[{"id":"`+literalHookID+`"`)
			checkQueued(t, "API bulk retry", in, true, a.rdb, before)

			for _, path := range []string{"/?", "/partials/hooks?", "/hooks/?"} {
				status, header, body := d.get(t, path+in.query)
				if status == http.StatusMovedPermanently { // the old dashboard's list, redirected with its query
					if loc := header.Get("Location"); path != "/hooks/?" || loc != "/?"+in.query {
						t.Errorf("%s: redirected to %q, want /?%s", path, loc, in.query)
					}
					status, _, body = d.get(t, header.Get("Location"))
				}
				checkPageInjection(t, path, in, false, status, body)
			}

			before = queuedJobs(t, d.rdb)
			status, header, body := rawRequest(t, d.client, http.MethodPost, d.srv.URL+"/retry-failed", formHeader,
				strings.NewReader("csrf="+token+"&"+in.query))
			if in.refused(true) {
				checkPageInjection(t, "bulk retry form", in, true, status, body)
			} else if status != http.StatusSeeOther || !strings.Contains(header.Get("Location"), "queued=1&") {
				t.Errorf("bulk retry form: %d to %q, want 303 to ?queued=1", status, header.Get("Location"))
			}
			checkQueued(t, "bulk retry form", in, true, d.rdb, before)
		})
	}
}

// unmarkRetry clears the retry mark of the hook id, as the engine's first
// event of the retried attempt would.
func unmarkRetry(t *testing.T, store monitor.Store, id string) {
	t.Helper()
	h, err := store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ClearRetry(context.Background(), id, h.RetryQueued); err != nil {
		t.Fatal(err)
	}
}

// checkAPIInjection checks a JSON answer of a route allowing allowed
// (strict: refusing unknown parameters): the exact 400 body of a refusal,
// else okStatus and a body holding each of wants.
func checkAPIInjection(t *testing.T, route string, in injection, allowed string, strict bool, okStatus, status int, body string, wants ...string) {
	t.Helper()
	if in.refused(strict) {
		if want := errorBody(t, "BAD_PARAMETER", in.description(allowed, strict)); status != http.StatusBadRequest || body != want {
			t.Errorf("%s: %d %s\nwant 400 %s", route, status, body, want)
		}
		return
	}
	for _, want := range wants {
		if status != okStatus || !strings.Contains(body, want) {
			t.Errorf("%s: %d %.300s\nwant %d with %s", route, status, body, okStatus, want)
		}
	}
}

// checkPageInjection checks a dashboard answer: 400 showing the
// description, else the literal hook alone.
func checkPageInjection(t *testing.T, route string, in injection, strict bool, status int, body string) {
	t.Helper()
	if in.refused(strict) {
		if want := html.EscapeString(in.description(dashboardAllows, strict)); status != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want 400 showing %s", route, status, want)
		}
		return
	}
	if ids := rowIDs(body); status != http.StatusOK || len(ids) != 1 || ids[0] != literalHookID {
		t.Errorf("%s: %d, rows %v, want 200 with %s alone", route, status, ids, literalHookID)
	}
}

// checkQueued checks that a refusal queued nothing and a literal read one job.
func checkQueued(t *testing.T, route string, in injection, strict bool, rdb *redis.Client, before int64) {
	t.Helper()
	want := before + 1
	if in.refused(strict) {
		want = before
	}
	if n := queuedJobs(t, rdb); n != want {
		t.Errorf("%s: the jobs stream holds %d entries, want %d", route, n, want)
	}
}

// oversized is one request too large for the servers.
type oversized struct {
	name, method, path string
	header             http.Header
	body               func() io.Reader // nil: no body
	status             int
	// want is the API's exact body, or text the dashboard's page shows.
	want string
}

const tenMB = 10 << 20

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

// bigForm is a 10 MB urlencoded form (with a Content-Length).
func bigForm() io.Reader {
	return bytes.NewReader(append([]byte("pad="), bytes.Repeat([]byte("a"), tenMB)...))
}

// bigChunkedForm is the same form sent chunked, without a Content-Length.
func bigChunkedForm() io.Reader { return io.MultiReader(bigForm()) }

// manyParams is a query of n distinct parameters.
func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "p%d=%d&", i, i)
	}
	return strings.TrimSuffix(b.String(), "&")
}

// TestSecurityOversized sends 10 MB bodies to every POST route, huge query
// strings, 10,000 parameters and paging far out of range: each gets a clear
// 4xx, nothing is queued, and a normal request afterwards is answered.
func TestSecurityOversized(t *testing.T) {
	a := startAPI(t, APIConfig{Token: "s3cret-token"})
	seedInjection(t, a)
	d := startDashboard(t, nil)
	seedInjection(t, &testAPI{store: d.store})
	token := d.csrf(t, "/retry-failed")
	withToken := func(h http.Header) http.Header {
		h = h.Clone()
		h.Set(csrfHeader, token)
		return h
	}
	bearer := http.Header{"Authorization": {"Bearer s3cret-token"}}
	bearerProgram := bearer.Clone()
	bearerProgram.Set(RequestHeader, "1")
	bearerForm := bearer.Clone()
	bearerForm.Set("Content-Type", "application/x-www-form-urlencoded")
	bigSearch := strings.Repeat("a", 100<<10)
	statsFrom, statsTo := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).Add(-time.Millisecond)
	statsBuckets := statsTo.Sub(statsFrom)/time.Minute + 1
	apiBad := func(desc string) string { return errorBody(t, "BAD_PARAMETER", desc) }
	tooLarge := "the request body must be at most 1048576 bytes"
	tooLargeBody := errorBody(t, "TOO_LARGE", tooLarge)
	emptyList := `{"data":[],"meta":{"totalItems":0,"totalPages":0,"currentPage":1,"itemsPerPage":10}}`

	apiCases := []oversized{
		{"retry, 10 MB", http.MethodPost, "/api/sendhooks/v1/hooks/" + literalHookID + "/retry", bearer, bigForm, http.StatusRequestEntityTooLarge, tooLargeBody},
		{"bulk retry, 10 MB", http.MethodPost, "/api/sendhooks/v1/hooks/retry", bearer, bigForm, http.StatusRequestEntityTooLarge, tooLargeBody},
		{"bulk retry, 10 MB form chunked", http.MethodPost, "/api/sendhooks/v1/hooks/retry", bearerForm, bigChunkedForm, http.StatusRequestEntityTooLarge, tooLargeBody},
		{"retry, 10 MB without token", http.MethodPost, "/api/sendhooks/v1/hooks/" + literalHookID + "/retry", nil, bigForm, http.StatusRequestEntityTooLarge, tooLargeBody},
		{"100 KB search", http.MethodGet, "/api/sendhooks/v1/hooks?search=" + bigSearch, bearer, nil, http.StatusBadRequest,
			apiBad(fmt.Sprintf("search must be at most 200 characters long, got %d", len(bigSearch)))},
		{"201-character search", http.MethodGet, "/api/sendhooks/v1/hooks?search=" + strings.Repeat("é", 201), bearer, nil, http.StatusBadRequest,
			apiBad("search must be at most 200 characters long, got 201")},
		{"200-character search", http.MethodGet, "/api/sendhooks/v1/hooks?search=" + strings.Repeat("é", 200), bearer, nil, http.StatusOK, emptyList},
		// Unknown parameters of plain names are ignored, as the old API
		// ignored them; shaped as operators they are refused.
		{"100 KB unknown parameter, ignored", http.MethodGet, "/api/sendhooks/v1/hooks?search=nothing-matches&" + bigSearch + "=1", bearer, nil, http.StatusOK, emptyList},
		{"100 KB operator-shaped parameter", http.MethodGet, "/api/sendhooks/v1/hooks?" + bigSearch + "[$ne]=1", bearer, nil, http.StatusBadRequest,
			apiBad(fmt.Sprintf("parameter %q is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: %s", bigSearch+"[$ne]", listAllowed))},
		{"10,000 parameters, ignored", http.MethodGet, "/api/sendhooks/v1/hooks?search=nothing-matches&" + manyParams(9_999), bearer, nil, http.StatusOK, emptyList},
		{"bulk retry, 10,000 parameters", http.MethodPost, "/api/sendhooks/v1/hooks/retry?search=nothing-matches&" + manyParams(9_999), bearerProgram, nil, http.StatusBadRequest,
			apiBad(`unknown parameter "p0"; allowed: ` + bulkAllowed)},
		{"10,001 parameters", http.MethodGet, "/api/sendhooks/v1/hooks?" + manyParams(10_001), bearer, nil, http.StatusBadRequest,
			apiBad("the query string or form does not parse: number of URL query parameters exceeded limit")},
		{"bulk retry, 10,001 parameters", http.MethodPost, "/api/sendhooks/v1/hooks/retry?search=nothing-matches&" + manyParams(10_000), bearer, nil, http.StatusBadRequest,
			apiBad("the query string or form does not parse: number of URL query parameters exceeded limit")},
		{"page 10^18", http.MethodGet, "/api/sendhooks/v1/hooks?page=1000000000000000000", bearer, nil, http.StatusBadRequest,
			apiBad(`page 1000000000000000000 is past page 1000000; page through older webhooks with the older cursor of meta`)},
		{"limit 10^18, served as 100", http.MethodGet, "/api/sendhooks/v1/hooks?search=nothing-matches&limit=1000000000000000000", bearer, nil, http.StatusOK,
			`{"data":[],"meta":{"totalItems":0,"totalPages":0,"currentPage":1,"itemsPerPage":100,"limitCapped":true}}`},
		{"page past int64", http.MethodGet, "/api/sendhooks/v1/hooks?page=99999999999999999999", bearer, nil, http.StatusBadRequest,
			apiBad(`page 99999999999999999999 is past page 1000000; page through older webhooks with the older cursor of meta`)},
		{"26 years of minute buckets", http.MethodGet, "/api/sendhooks/v1/stats?from=2000-01-01&to=2026-01-01&bucket=1m", bearer, nil, http.StatusBadRequest,
			apiBad(fmt.Sprintf("bucket 1m0s splits the range into %d buckets; at most 1000 are allowed", statsBuckets))},
		{"2 MB query string", http.MethodGet, "/api/sendhooks/v1/hooks?search=" + strings.Repeat("a", 2<<20), bearer, nil, http.StatusRequestHeaderFieldsTooLarge,
			"431 Request Header Fields Too Large"},
	}
	for _, c := range apiCases {
		t.Run("API "+c.name, func(t *testing.T) {
			status, _, body := sendOversized(t, a.srv.URL, nil, c)
			if status != c.status || strings.TrimSpace(body) != c.want {
				t.Errorf("%d %.300s\nwant %d %.300s", status, body, c.status, c.want)
			}
			var alive struct{ Meta listMeta }
			if a.getJSON(t, "/api/sendhooks/v1/hooks", &alive); alive.Meta.TotalItems != injectionHooks {
				t.Errorf("the list after it: %+v", alive.Meta)
			}
		})
	}

	retryPath := "/hooks/" + literalHookID + "/retry"
	dashCases := []oversized{
		{"login, 10 MB", http.MethodPost, "/login", withToken(formHeader), bigForm, http.StatusRequestEntityTooLarge, tooLarge},
		{"retry, 10 MB", http.MethodPost, retryPath, withToken(formHeader), bigForm, http.StatusRequestEntityTooLarge, tooLarge},
		{"bulk retry, 10 MB", http.MethodPost, "/retry-failed", withToken(formHeader), bigForm, http.StatusRequestEntityTooLarge, tooLarge},
		{"bulk retry, 10 MB chunked", http.MethodPost, "/retry-failed", withToken(formHeader), bigChunkedForm, http.StatusRequestEntityTooLarge, tooLarge},
		{"retry, 10 MB chunked", http.MethodPost, retryPath, withToken(formHeader), bigChunkedForm, http.StatusRequestEntityTooLarge, tooLarge},
		{"retry, 10 MB multipart", http.MethodPost, retryPath, withToken(http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}), bigForm, http.StatusRequestEntityTooLarge, tooLarge},
		{"100 KB search", http.MethodGet, "/?search=" + bigSearch, nil, nil, http.StatusBadRequest, "search must be at most 200 characters long"},
		{"200-character search", http.MethodGet, "/?search=" + strings.Repeat("a", 200), nil, nil, http.StatusOK, "No webhooks match."},
		{"10,001 parameters", http.MethodGet, "/?" + manyParams(10_001), nil, nil, http.StatusBadRequest, "number of URL query parameters exceeded limit"},
		{"page 10^18", http.MethodGet, "/partials/hooks?page=1000000000000000000", nil, nil, http.StatusBadRequest, "page 1000000000000000000 is past page 1000000"},
		{"limit 10^18, served as 100", http.MethodGet, "/?limit=1000000000000000000", nil, nil, http.StatusOK, `name="limit" value="100"`},
		// Last: without the limit, a logout would replace the session and its token.
		{"logout, 10 MB", http.MethodPost, "/logout", withToken(formHeader), bigForm, http.StatusRequestEntityTooLarge, tooLarge},
	}
	for _, c := range dashCases {
		t.Run("dashboard "+c.name, func(t *testing.T) {
			status, _, body := sendOversized(t, d.srv.URL, d.client.Jar, c)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Errorf("%d, want %d showing %q", status, c.status, c.want)
			}
			if status, _, body := d.get(t, "/"); status != http.StatusOK || len(rowIDs(body)) != injectionHooks {
				t.Errorf("the list after it: %d, rows %v", status, rowIDs(body))
			}
		})
	}
	if n, m := queuedJobs(t, a.rdb), queuedJobs(t, d.rdb); n != 0 || m != 0 {
		t.Fatalf("oversized requests queued %d jobs through the API and %d through the dashboard", n, m)
	}
}

// sendOversized sends c to the server at base, on a fresh connection, with
// the cookies of jar (nil: none).
func sendOversized(t *testing.T, base string, jar http.CookieJar, c oversized) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if c.body != nil {
		body = c.body()
	}
	client := &http.Client{Transport: &http.Transport{}, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	return rawRequest(t, client, c.method, base+c.path, c.header, body)
}

// TestSecurityAPIAuthBypass tries to reach the API's data without its
// token: spellings of the header, the token elsewhere, path tricks and
// other methods. None answers with data, and nothing is queued.
func TestSecurityAPIAuthBypass(t *testing.T) {
	const secret = "s3cret-token"
	a := startAPI(t, APIConfig{Token: secret, AllowedOrigins: []string{"https://dash.example"}})
	seedInjection(t, a)
	unauthorized := errorBody(t, "UNAUTHORIZED", "a valid bearer token is required: Authorization: Bearer <SENDHOOKS_API_TOKEN>")
	notFound := errorBody(t, "NOT_FOUND", "Not Found")
	hooks := "/api/sendhooks/v1/hooks"

	headers := []http.Header{
		{"Authorization": {"bearer " + secret}},
		{"Authorization": {"BEARER " + secret}},
		{"Authorization": {"Bearer  " + secret}},
		{"Authorization": {"Bearer\t" + secret}},
		{"Authorization": {"Bearer " + strings.ToUpper(secret)}},
		{"Authorization": {"Bearer " + secret[:len(secret)-1]}},
		{"Authorization": {"Bearer " + secret + "x"}},
		{"Authorization": {"Bearer Bearer " + secret}},
		{"Authorization": {"Token " + secret}},
		{"Authorization": {"Basic " + secret}},
		{"Authorization": {"Bearer" + secret}},
		{"Authorization": {"Bearer wrong", "Bearer " + secret}},
		{"Authorization": {"Bearer " + secret + ", Bearer wrong"}},
		{"X-Authorization": {"Bearer " + secret}},
		{"Cookie": {"token=" + secret}},
	}
	for _, h := range headers {
		for _, path := range []string{hooks, hooks + "?access_token=" + secret} {
			status, _, body := rawRequest(t, http.DefaultClient, http.MethodGet, a.srv.URL+path, h, nil)
			if status != http.StatusUnauthorized || body != unauthorized+"\n" {
				t.Errorf("GET %s with %v: %d %.200s, want 401", path, h, status, body)
			}
		}
	}

	paths := []struct {
		method, path string
		status       int
		body         string
	}{
		{http.MethodGet, hooks + "?token=" + secret, http.StatusUnauthorized, unauthorized},
		{http.MethodGet, hooks + "?access_token=" + secret, http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/../v1/hooks", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/%2e%2e/v1/hooks", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1//hooks", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/hooks/", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/hooks/" + literalHookID, http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/hooks%2f" + literalHookID, http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/stats", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "//api/sendhooks/v1/hooks", http.StatusNotFound, notFound},
		{http.MethodGet, "/api/sendhooks/x/../v1/hooks", http.StatusNotFound, notFound},
		{http.MethodGet, "/api/sendhooks/%2e%2e/sendhooks/v1/hooks", http.StatusNotFound, notFound},
		{http.MethodGet, "/API/sendhooks/v1/hooks", http.StatusNotFound, notFound},
		{http.MethodGet, "/healthz/../api/sendhooks/v1/hooks", http.StatusNotFound, notFound},
		{http.MethodGet, "/metrics", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/metrics/", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/hooks/" + literalHookID + "/", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/stats/", http.StatusUnauthorized, unauthorized},
		{http.MethodPost, hooks + "/retry/", http.StatusUnauthorized, unauthorized},
		{http.MethodGet, "/api/sendhooks/v1/hooks//", http.StatusUnauthorized, unauthorized},
		{http.MethodHead, hooks, http.StatusUnauthorized, ""},
		{http.MethodOptions, hooks, http.StatusUnauthorized, unauthorized},
		{http.MethodPut, hooks, http.StatusUnauthorized, unauthorized},
		{http.MethodDelete, hooks + "/" + literalHookID, http.StatusUnauthorized, unauthorized},
		{http.MethodPost, hooks + "/" + literalHookID + "/retry", http.StatusUnauthorized, unauthorized},
		{http.MethodPost, hooks + "/retry", http.StatusUnauthorized, unauthorized},
		{http.MethodPost, hooks + "/retry?token=" + secret, http.StatusUnauthorized, unauthorized},
		{http.MethodPost, "/api/sendhooks/v1/../v1/hooks/retry", http.StatusUnauthorized, unauthorized},
	}
	for _, p := range paths {
		for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}, {"Origin": {"https://dash.example"}}} {
			status, _, body := rawRequest(t, http.DefaultClient, p.method, a.srv.URL+p.path, h, nil)
			want := p.body
			if want != "" {
				want += "\n"
			}
			if status != p.status || body != want {
				t.Errorf("%s %s with %v: %d %.200s, want %d %s", p.method, p.path, h, status, body, p.status, p.body)
			}
		}
	}
	if n := queuedJobs(t, a.rdb); n != 0 {
		t.Fatalf("requests without the token queued %d jobs", n)
	}
}

// TestSecurityCORSPreflight checks that a foreign origin's preflight (and a
// listed origin's for a method the API does not allow) gets no CORS
// headers, so a browser does not send the request.
func TestSecurityCORSPreflight(t *testing.T) {
	a := startAPI(t, APIConfig{Token: "s3cret-token", AllowedOrigins: []string{"https://dash.example"}})
	tests := []struct {
		origin, method, path, allow string
	}{
		{"https://dash.example", http.MethodPost, "/api/sendhooks/v1/hooks/retry", "https://dash.example"},
		{"https://evil.example", http.MethodPost, "/api/sendhooks/v1/hooks/retry", ""},
		{"https://evil.example", http.MethodPost, "/api/sendhooks/v1/hooks/x/retry", ""},
		{"null", http.MethodPost, "/api/sendhooks/v1/hooks/retry", ""},
		{"https://dash.example.evil.example", http.MethodPost, "/api/sendhooks/v1/hooks/retry", ""},
		{"https://evil-dash.example", http.MethodGet, "/api/sendhooks/v1/hooks", ""},
		{"http://dash.example", http.MethodGet, "/api/sendhooks/v1/hooks", ""},
		{"https://dash.example", http.MethodDelete, "/api/sendhooks/v1/hooks/x", ""},
		{"https://dash.example", http.MethodPut, "/api/sendhooks/v1/hooks/retry", ""},
	}
	for _, tt := range tests {
		h := http.Header{"Origin": {tt.origin}, "Access-Control-Request-Method": {tt.method}, "Access-Control-Request-Headers": {"authorization"}}
		status, header, body := rawRequest(t, http.DefaultClient, http.MethodOptions, a.srv.URL+tt.path, h, nil)
		if status != http.StatusNoContent || body != "" || header.Get("Access-Control-Allow-Origin") != tt.allow ||
			(tt.allow == "" && header.Get("Access-Control-Allow-Methods") != "") {
			t.Errorf("preflight of %s %s from %s: %d, Allow-Origin %q, Allow-Methods %q; want 204, %q", tt.method, tt.path, tt.origin,
				status, header.Get("Access-Control-Allow-Origin"), header.Get("Access-Control-Allow-Methods"), tt.allow)
		}
	}
	// A simple cross-origin POST (no preflight, no token) is refused.
	status, header, _ := rawRequest(t, http.DefaultClient, http.MethodPost, a.srv.URL+"/api/sendhooks/v1/hooks/retry",
		http.Header{"Origin": {"https://evil.example"}, "Content-Type": {"text/plain"}}, strings.NewReader("x"))
	if status != http.StatusUnauthorized || header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("cross-origin POST: %d, Allow-Origin %q; want 401 and none", status, header.Get("Access-Control-Allow-Origin"))
	}
	if n := queuedJobs(t, a.rdb); n != 0 {
		t.Fatalf("%d jobs queued", n)
	}
}
