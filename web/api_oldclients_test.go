package web

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks/monitor"
)

// oldDashboardOrigin is where the old Next.js dashboard ran (its compose
// file's ALLOWED_ORIGINS).
const oldDashboardOrigin = "http://localhost:3000"

// oldDashboardHeader is what a browser running the old dashboard sent
// with each of its fetches (wretch's .json() asks for JSON).
var oldDashboardHeader = http.Header{
	"Accept":         {"application/json"},
	"Origin":         {oldDashboardOrigin},
	"Referer":        {oldDashboardOrigin + "/hooks"},
	"Sec-Fetch-Site": {"same-site"},
	"Sec-Fetch-Mode": {"cors"},
}

// oldExchange is one request of an old client and the answer it must get:
// a list (ids and meta) or an exact body.
type oldExchange struct {
	name, method, path string
	status             int
	ids                []string // a list answer's ids, in order
	meta               listMeta // a list answer's meta, cursors left out
	body               string   // any other answer, exactly
}

// checkOldExchanges sends each request with header and checks its answer.
func checkOldExchanges(t *testing.T, a *testAPI, header http.Header, exchanges []oldExchange) {
	t.Helper()
	for _, x := range exchanges {
		method := x.method
		if method == "" {
			method = http.MethodGet
		}
		status, h, body := a.do(t, method, x.path, header)
		if status != x.status {
			t.Errorf("%s: %s %s: %d %.300s, want %d", x.name, method, x.path, status, body, x.status)
			continue
		}
		if origin := header.Get("Origin"); origin != "" && h.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", x.name, h.Get("Access-Control-Allow-Origin"), origin)
		}
		if x.ids == nil {
			if body != x.body {
				t.Errorf("%s: %s %s:\n got %s\nwant %s", x.name, method, x.path, body, x.body)
			}
			continue
		}
		var got listBody
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v in %s", x.name, err, body)
		}
		got.Meta.Older, got.Meta.Newer = "", ""
		if !reflect.DeepEqual(got.ids(), x.ids) || got.Meta != x.meta {
			t.Errorf("%s: %s %s:\n got %v %+v\nwant %v %+v", x.name, method, x.path, got.ids(), got.Meta, x.ids, x.meta)
		}
	}
}

// The twelve hooks of seedList, newest first.
var (
	seedFirst10 = []string{"bulk-12", "bulk-11", "bulk-10", "bulk-9", "bulk-8", "bulk-7", "bulk-6", "ORDER-5", "orderX1", "price$3"}
	seedAll     = append(append([]string{}, seedFirst10...), "order(2)", "order.1")
)

// TestOldDashboardRequests sends the requests of the old Next.js
// dashboard exactly as it built them: the list at /hooks/?<the page's own
// query> (URLSearchParams: spaces as +, colons escaped, insertion order),
// its date pickers' "YYYY-MM-DD HH:mm:ss", its page numbers, no limit, and
// the detail at /hooks/<id>/, from a browser on another port.
func TestOldDashboardRequests(t *testing.T) {
	a := startAPI(t, APIConfig{AllowedOrigins: []string{oldDashboardOrigin}})
	seedList(t, a)
	hooks := "/api/sendhooks/v1/hooks"
	page1 := listMeta{TotalItems: 12, TotalPages: 2, CurrentPage: 1, ItemsPerPage: 10}
	checkOldExchanges(t, a, oldDashboardHeader, []oldExchange{
		{name: "first load, no query", path: hooks + "/?", status: 200, ids: seedFirst10, meta: page1},
		{name: "first load, bare", path: hooks + "/", status: 200, ids: seedFirst10, meta: page1},
		{name: "page 2", path: hooks + "/?page=2", status: 200, ids: []string{"order(2)", "order.1"},
			meta: listMeta{TotalItems: 12, TotalPages: 2, CurrentPage: 2, ItemsPerPage: 10}},
		{name: "status", path: hooks + "/?status=failed&page=1", status: 200, ids: []string{"orderX1", "order(2)"},
			meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "created range from the date pickers",
			path:   hooks + "/?createdStartDate=2026-01-02+00%3A00%3A00&createdEndDate=2026-01-03+00%3A00%3A00",
			status: 200, ids: []string{"ORDER-5", "orderX1"}, meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "delivered range and status and page",
			path:   hooks + "/?status=success&deliveredStartDate=2026-01-03+00%3A00%3A00&deliveredEndDate=2026-01-03+07%3A00%3A00&page=1",
			status: 200, ids: []string{"bulk-6", "ORDER-5"}, meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "search", path: hooks + "/?search=order&page=1", status: 200, ids: []string{"ORDER-5", "orderX1", "order(2)", "order.1"},
			meta: listMeta{TotalItems: 4, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "filters cleared but page kept", path: hooks + "/?page=2&search=&status=", status: 200, ids: []string{"order(2)", "order.1"},
			meta: listMeta{TotalItems: 12, TotalPages: 2, CurrentPage: 2, ItemsPerPage: 10}},
		{name: "detail", path: hooks + "/" + "order.1" + "/", status: 200,
			body: `{"_id":"order.1","id":"order.1","url":"https://a.example/x","status":"success","created":"2026-01-01T01:00:00Z",` +
				`"delivered":"2026-01-01T01:00:05Z","error":"","externalId":"order.1","messageId":"","payloadSize":10,"numberOfTries":1,` +
				`"attempts":[],"updatedAt":"0001-01-01T00:00:00Z"}`},
		{name: "detail of an unknown id", path: hooks + "/664f1a2b3c4d5e6f7a8b9c0d/", status: 404,
			body: errorBody(t, "HOOK_NOT_FOUND", `no webhook has the id "664f1a2b3c4d5e6f7a8b9c0d"`)},
	})
}

// TestOldClientRequests sends what a typical client of the old API sent:
// jQuery's cache-buster, page and limit that the old API's parseInt read
// loosely, a limit above 100, the date forms JavaScript's Date reads, and
// trailing slashes on every route; and checks that operator-shaped and
// repeated parameters are still refused.
func TestOldClientRequests(t *testing.T) {
	a := startAPI(t, APIConfig{})
	seedList(t, a)
	hooks := "/api/sendhooks/v1/hooks"
	page1 := listMeta{TotalItems: 12, TotalPages: 2, CurrentPage: 1, ItemsPerPage: 10}
	jan3 := strconv.FormatInt(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC).UnixMilli(), 10)
	bulk := seedAll[:7]
	listAllowed := "page, limit, older, newer, status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search"
	checkOldExchanges(t, a, http.Header{"Accept": {"application/json, text/javascript, */*; q=0.01"}, "X-Requested-With": {"XMLHttpRequest"}}, []oldExchange{
		{name: "cache-buster", path: hooks + "?_=1716544800000", status: 200, ids: seedFirst10, meta: page1},
		{name: "page=0, limit=0", path: hooks + "?page=0&limit=0", status: 200, ids: seedFirst10, meta: page1},
		{name: "page=abc, limit=abc", path: hooks + "?page=abc&limit=abc", status: 200, ids: seedFirst10, meta: page1},
		{name: "negative page and limit", path: hooks + "?page=-2&limit=-5", status: 200, ids: seedFirst10, meta: page1},
		{name: "page and limit read as parseInt", path: hooks + "?page=2.7&limit=5px", status: 200,
			ids: []string{"bulk-7", "bulk-6", "ORDER-5", "orderX1", "price$3"}, meta: listMeta{TotalItems: 12, TotalPages: 3, CurrentPage: 2, ItemsPerPage: 5}},
		{name: "limit=500 served as 100", path: hooks + "?page=0&limit=500&_=1716544800000", status: 200, ids: seedAll,
			meta: listMeta{TotalItems: 12, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 100, LimitCapped: true}},
		{name: "limit=500, page 2 of 100", path: hooks + "/?page=2&limit=500", status: 200, ids: []string{},
			meta: listMeta{TotalItems: 12, TotalPages: 1, CurrentPage: 2, ItemsPerPage: 100, LimitCapped: true}},
		{name: "unknown parameters", path: hooks + "?status=failed&utm_source=mail&v=2&token=x&", status: 200, ids: []string{"orderX1", "order(2)"},
			meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "RFC 1123 dates", path: hooks + "?createdStartDate=Fri,%2002%20Jan%202026%2000:00:00%20GMT&createdEndDate=Fri,%2002%20Jan%202026%2023:59:59%20GMT",
			status: 200, ids: []string{"ORDER-5", "orderX1"}, meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "Date.toString", path: hooks + "?createdStartDate=Sat+Jan+03+2026+01:00:00+GMT%2B0100+(Central+European+Standard+Time)",
			status: 200, ids: bulk, meta: listMeta{TotalItems: 7, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "Unix milliseconds", path: hooks + "?createdStartDate=" + jan3, status: 200, ids: bulk,
			meta: listMeta{TotalItems: 7, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "ISO without a zone, as UTC", path: hooks + "?createdStartDate=2026-01-01T02:00:00&createdEndDate=2026-01-01T03:00:00.000",
			status: 200, ids: []string{"price$3", "order(2)"}, meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "a date alone as the end means the whole day", path: hooks + "?createdEndDate=2026-01-01", status: 200,
			ids: []string{"price$3", "order(2)", "order.1"}, meta: listMeta{TotalItems: 3, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "RFC 3339", path: hooks + "?deliveredStartDate=2026-01-03T07:00:00%2B01:00&deliveredEndDate=2026-01-03T07:01:00Z", status: 200,
			ids: []string{"bulk-7", "bulk-6"}, meta: listMeta{TotalItems: 2, TotalPages: 1, CurrentPage: 1, ItemsPerPage: 10}},
		{name: "detail with a trailing slash", path: hooks + "/" + "price$3/", status: 200,
			body: `{"_id":"price$3","id":"price$3","url":"https://b.example/z","status":"success","created":"2026-01-01T03:00:00Z",` +
				`"delivered":"2026-01-01T03:00:01Z","error":"","externalId":"price$3","messageId":"","payloadSize":10,"numberOfTries":1,` +
				`"attempts":[],"updatedAt":"0001-01-01T00:00:00Z"}`},
		{name: "bulk retry with a trailing slash", method: http.MethodPost, path: hooks + "/retry/?status=failed", status: 202,
			body: `{"matched":2,"queued":0,"skipped":2,"truncated":false,"hooks":[]}`},
		{name: "retry with a trailing slash", method: http.MethodPost, path: hooks + "/orderX1/retry/", status: 409,
			body: errorBody(t, "NOT_RETRIABLE", "hook cannot be retried: the engine did not report the job's payload (an older engine, or a job over 4 MiB, which is not kept)")},
		{name: "stats with a trailing slash and old dates", path: "/api/sendhooks/v1/stats/?from=2026-01-01+00:00:00&to=2026-01-01+23:59:59&bucket=24h&_=1", status: 200,
			body: `{"from":"2026-01-01T00:00:00Z","to":"2026-01-01T23:59:59Z","bucket":"24h0m0s","total":3,"truncated":false,` +
				`"byStatus":{"failed":1,"success":2},"buckets":[{"start":"2026-01-01T00:00:00Z","counts":{"failed":1,"success":2}}],` +
				`"successRate":0.6666666666666666,"latency":{"count":0,"p50":0,"p95":0,"p99":0},` +
				`"failingEndpoints":[{"url":"https://a.example","failed":1,"total":2,"failureRate":0.5}]}`},
		{name: "health with a trailing slash", path: "/healthz/", status: 200, body: `{"status":"ok"}`},

		// Still refused, naming the parameter: operators, repeats, bad dates.
		{name: "qs operator", path: hooks + "/?status[$ne]=failed&_=1", status: 400, body: errorBody(t, "BAD_PARAMETER",
			`parameter "status[$ne]" is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: `+listAllowed)},
		{name: "dotted operator", path: hooks + "?search.$regex=.*", status: 400, body: errorBody(t, "BAD_PARAMETER",
			`parameter "search.$regex" is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: `+listAllowed)},
		{name: "qs array", path: hooks + "?status[]=failed&status[]=success", status: 400, body: errorBody(t, "BAD_PARAMETER",
			`parameter "status[]" is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: `+listAllowed)},
		{name: "repeated", path: hooks + "/?status=failed&status=success", status: 400, body: errorBody(t, "BAD_PARAMETER", "status must be given once, got 2 values")},
		{name: "bad date", path: hooks + "?createdStartDate=24/05/2024", status: 400,
			body: errorBody(t, "BAD_PARAMETER", `createdStartDate must be `+dateForms+`, got "24/05/2024"`)},
		{name: "bulk retry refuses a misspelt filter", method: http.MethodPost, path: hooks + "/retry/?stauts=failed", status: 400,
			body: errorBody(t, "BAD_PARAMETER", `unknown parameter "stauts"; allowed: status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search`)},
	})
}

// TestLimitCappedMeta checks that meta counts pages of the limit served,
// at a size where it matters: 250 webhooks at limit=500 are 3 pages of 100.
func TestLimitCappedMeta(t *testing.T) {
	a := startAPI(t, APIConfig{})
	var batch []monitor.Event
	for i := range 250 {
		ev := oldEvent("bulk-"+strconv.Itoa(i), "https://a.example/", "success", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")
		ev.Created.Time = ev.Created.Add(time.Duration(i) * time.Second)
		batch = append(batch, monitor.Event{StatusEvent: ev})
	}
	if err := a.store.Apply(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		n     int
		meta  listMeta
	}{
		{"?limit=500", 100, listMeta{TotalItems: 250, TotalPages: 3, CurrentPage: 1, ItemsPerPage: 100, LimitCapped: true}},
		{"?limit=500&page=3", 50, listMeta{TotalItems: 250, TotalPages: 3, CurrentPage: 3, ItemsPerPage: 100, LimitCapped: true}},
		{"?limit=100&page=3", 50, listMeta{TotalItems: 250, TotalPages: 3, CurrentPage: 3, ItemsPerPage: 100}},
		{"?limit=abc&page=25", 10, listMeta{TotalItems: 250, TotalPages: 25, CurrentPage: 25, ItemsPerPage: 10}},
	} {
		var got listBody
		a.getJSON(t, "/api/sendhooks/v1/hooks"+tt.query, &got)
		got.Meta.Older, got.Meta.Newer = "", ""
		if len(got.Data) != tt.n || got.Meta != tt.meta {
			t.Errorf("%s: %d webhooks, meta %+v; want %d, %+v", tt.query, len(got.Data), got.Meta, tt.n, tt.meta)
		}
		if strings.Contains(tt.query, "500") && got.Data[0].ID != "bulk-"+strconv.Itoa(249-(tt.meta.CurrentPage-1)*100) {
			t.Errorf("%s: starts at %s", tt.query, got.Data[0].ID)
		}
	}
}
