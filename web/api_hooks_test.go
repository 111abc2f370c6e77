package web

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/sendhooks/sendhooks"
)

// seedList stores twelve hooks of the old engine's kind, created an hour
// apart or more, with ids and URLs that exercise search.
func seedList(t *testing.T, a *testAPI) {
	t.Helper()
	evs := []sendhooks.StatusEvent{
		oldEvent("order.1", "https://a.example/x", sendhooks.StatusSuccess, "2026-01-01T01:00:00Z", "2026-01-01T01:00:05Z"),
		oldEvent("order(2)", "https://a.example/y", sendhooks.StatusFailed, "2026-01-01T02:00:00Z", ""),
		oldEvent("price$3", "https://b.example/z", sendhooks.StatusSuccess, "2026-01-01T03:00:00Z", "2026-01-01T03:00:01Z"),
		oldEvent("orderX1", "https://b.example/z", sendhooks.StatusFailed, "2026-01-02T04:00:00Z", ""),
		oldEvent("ORDER-5", "https://c.example/", sendhooks.StatusSuccess, "2026-01-02T05:00:00Z", "2026-01-03T00:00:00Z"),
	}
	for h := 6; h <= 12; h++ {
		evs = append(evs, oldEvent(fmt.Sprintf("bulk-%d", h), "https://d.example/bulk", sendhooks.StatusSuccess,
			fmt.Sprintf("2026-01-03T%02d:00:00Z", h), fmt.Sprintf("2026-01-03T%02d:01:00Z", h)))
	}
	a.seed(t, evs...)
}

type listBody struct {
	Data []struct {
		ID string `json:"_id"`
	} `json:"data"`
	Meta listMeta `json:"meta"`
}

func (l listBody) ids() []string {
	ids := []string{}
	for _, h := range l.Data {
		ids = append(ids, h.ID)
	}
	return ids
}

func TestListPaging(t *testing.T) {
	a := startAPI(t, APIConfig{})
	seedList(t, a)
	tests := []struct {
		query string
		ids   []string
		meta  listMeta
	}{
		{"", []string{"bulk-12", "bulk-11", "bulk-10", "bulk-9", "bulk-8", "bulk-7", "bulk-6", "ORDER-5", "orderX1", "price$3"},
			listMeta{TotalItems: 12, TotalPages: 2, CurrentPage: 1, ItemsPerPage: 10}},
		{"?page=3&limit=5", []string{"order(2)", "order.1"}, listMeta{TotalItems: 12, TotalPages: 3, CurrentPage: 3, ItemsPerPage: 5}},
		{"?page=2&limit=5", []string{"bulk-7", "bulk-6", "ORDER-5", "orderX1", "price$3"}, listMeta{TotalItems: 12, TotalPages: 3, CurrentPage: 2, ItemsPerPage: 5}},
		{"?page=9&limit=100", []string{}, listMeta{TotalItems: 12, TotalPages: 1, CurrentPage: 9, ItemsPerPage: 100}},
		{"?status=retrying", []string{}, listMeta{TotalItems: 0, TotalPages: 0, CurrentPage: 1, ItemsPerPage: 10}},
	}
	for _, tt := range tests {
		var got listBody
		a.getJSON(t, "/api/sendhooks/v1/hooks"+tt.query, &got)
		got.Meta.Older, got.Meta.Newer = "", "" // checked below
		if !reflect.DeepEqual(got.ids(), tt.ids) || got.Meta != tt.meta {
			t.Errorf("%q: got %v %+v, want %v %+v", tt.query, got.ids(), got.Meta, tt.ids, tt.meta)
		}
	}

	// The cursors walk the same pages as page and limit, and back.
	pages := [][]string{
		{"bulk-12", "bulk-11", "bulk-10", "bulk-9", "bulk-8"},
		{"bulk-7", "bulk-6", "ORDER-5", "orderX1", "price$3"},
		{"order(2)", "order.1"},
	}
	var got listBody
	a.getJSON(t, "/api/sendhooks/v1/hooks?limit=5", &got)
	for i, want := range pages {
		if !reflect.DeepEqual(got.ids(), want) || (got.Meta.Newer != "") != (i > 0) || (got.Meta.Older != "") != (i < 2) {
			t.Fatalf("older page %d: %v %+v, want %v", i, got.ids(), got.Meta, want)
		}
		if i < 2 {
			older := got.Meta.Older
			got = listBody{}
			a.getJSON(t, "/api/sendhooks/v1/hooks?limit=5&older="+older, &got)
		}
	}
	for i := 1; i >= 0; i-- {
		newer := got.Meta.Newer
		got = listBody{}
		a.getJSON(t, "/api/sendhooks/v1/hooks?limit=5&newer="+newer, &got)
		if !reflect.DeepEqual(got.ids(), pages[i]) || (got.Meta.Newer != "") != (i > 0) {
			t.Fatalf("newer page %d: %v %+v, want %v", i, got.ids(), got.Meta, pages[i])
		}
	}
}

func TestListFiltersAndSearch(t *testing.T) {
	a := startAPI(t, APIConfig{})
	seedList(t, a)
	bulk := []string{"bulk-12", "bulk-11", "bulk-10", "bulk-9", "bulk-8", "bulk-7", "bulk-6"}
	tests := []struct {
		query url.Values
		ids   []string
	}{
		{url.Values{"status": {"failed"}}, []string{"orderX1", "order(2)"}},
		{url.Values{"status": {"success,failed"}, "limit": {"100"}}, append(append([]string{}, bulk...), "ORDER-5", "orderX1", "price$3", "order(2)", "order.1")},
		{url.Values{"status": {"success"}, "search": {"order"}}, []string{"ORDER-5", "order.1"}},
		{url.Values{"createdStartDate": {"2026-01-02"}, "createdEndDate": {"2026-01-02"}}, []string{"ORDER-5", "orderX1"}},
		{url.Values{"createdStartDate": {"2026-01-01T02:00:00Z"}, "createdEndDate": {"2026-01-01T03:00:00Z"}}, []string{"price$3", "order(2)"}},
		{url.Values{"createdStartDate": {"2026-01-03T11:00:00+01:00"}}, []string{"bulk-12", "bulk-11", "bulk-10"}},
		{url.Values{"createdEndDate": {"2026-01-01"}}, []string{"price$3", "order(2)", "order.1"}},
		{url.Values{"deliveredStartDate": {"2026-01-03"}, "deliveredEndDate": {"2026-01-03T07:01:00Z"}}, []string{"bulk-7", "bulk-6", "ORDER-5"}},
		{url.Values{"deliveredEndDate": {"2026-01-01"}}, []string{"price$3", "order.1"}},
		{url.Values{"search": {"r.1"}}, []string{"order.1"}},
		{url.Values{"search": {"("}}, []string{"order(2)"}},
		{url.Values{"search": {"$"}}, []string{"price$3"}},
		{url.Values{"search": {".*"}}, []string{}},
		{url.Values{"search": {"order"}}, []string{"ORDER-5", "orderX1", "order(2)", "order.1"}},
		{url.Values{"search": {"B.EXAMPLE"}}, []string{"orderX1", "price$3"}},
		{url.Values{"search": {"{\"$ne\":1}"}}, []string{}},
	}
	for _, tt := range tests {
		var got listBody
		a.getJSON(t, "/api/sendhooks/v1/hooks?"+tt.query.Encode(), &got)
		if !reflect.DeepEqual(got.ids(), tt.ids) || got.Meta.TotalItems != int64(len(tt.ids)) {
			t.Errorf("%s: got %v (total %d), want %v", tt.query.Encode(), got.ids(), got.Meta.TotalItems, tt.ids)
		}
	}
}

func TestListBadParameters(t *testing.T) {
	a := startAPI(t, APIConfig{})
	tests := []struct{ query, description string }{
		{"page=1000001", `page 1000001 is past page 1000000; page through older webhooks with the older cursor of meta`},
		{"page=100002", `page 100002 of 10 webhooks starts past the 1000000 newest; use the older cursor of meta to page further`},
		{"status=done", `status must be success, failed or retrying (or a comma list of them), got "done"`},
		{"status%5B%24ne%5D=failed", `parameter "status[$ne]" is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: page, limit, older, newer, status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search`},
		{"status.%24ne=failed", `parameter "status.$ne" is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: page, limit, older, newer, status, createdStartDate, createdEndDate, deliveredStartDate, deliveredEndDate, search`},
		{"STATUS=failed", `unknown parameter "STATUS": names are case-sensitive, did you mean status?`},
		{"status=failed&status=success", `status must be given once, got 2 values`},
		{"page=1&page=2", `page must be given once, got 2 values`},
		{"createdStartDate=yesterday", `createdStartDate must be ` + dateForms + `, got "yesterday"`},
		{"deliveredEndDate=2026-13-01", `deliveredEndDate must be ` + dateForms + `, got "2026-13-01"`},
		{"createdStartDate=2026-01-02+25:00:00", `createdStartDate must be ` + dateForms + `, got "2026-01-02 25:00:00"`},
		{"createdEndDate=Fri,+24+May+2024+00:00:00+PST", `createdEndDate must be ` + dateForms + `, got "Fri, 24 May 2024 00:00:00 PST"`},
		{"deliveredStartDate=1716508800000000", `deliveredStartDate must be ` + dateForms + `, got "1716508800000000"`},
		{"createdStartDate=2026-01-02&createdEndDate=2026-01-01", `createdEndDate must not be before createdStartDate`},
	}
	for _, tt := range tests {
		status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks?"+tt.query, nil)
		want := errorBody(t, "BAD_PARAMETER", tt.description)
		if status != http.StatusBadRequest || body != want {
			t.Errorf("%s: %d %s, want 400 %s", tt.query, status, body, want)
		}
	}
}
