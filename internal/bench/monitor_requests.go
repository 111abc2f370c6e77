package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/web"
)

// monitorRequest is one request Monitor times, and the check of its answer.
type monitorRequest struct {
	name   string
	path   string // as shown: the path and query
	url    string // what is fetched
	target time.Duration
	check  func(body []byte) error
}

// Sizes of the timed requests.
const (
	dashboardLimit = 20  // the dashboard's page
	deepLimit      = 100 // the largest page, for the deep offset and the keyset step
	deepPage       = 1000
)

// deepPageOf is the page number of the deep offset request: page 1000 of
// 100 (the 99,901st to 100,000th webhooks) when there are enough, else
// one about halfway, so that the keyset step after it still finds a page.
func deepPageOf(n int) int { return max(1, min(deepPage, n/(2*deepLimit))) }

// monitorRequests are the requests Monitor times, with the checks of
// their answers, computed from the set. The keyset step goes on from the
// deep page's older cursor, which it reads first.
func monitorRequests(ctx context.Context, client *http.Client, p *monitorProcess, set *orderSet) ([]monitorRequest, error) {
	n := set.n
	all := func(int) bool { return true }
	api := func(name, path string, target time.Duration, check func([]byte) error) monitorRequest {
		path = web.APIPrefix + path
		return monitorRequest{name: name, path: path, url: p.api + path, target: target, check: check}
	}
	// list is a check of a list answer: the count and first webhook of
	// those among the newest window that match, a page of limit.
	list := func(window, limit int, match func(int) bool) listWant {
		count, newest := set.expect(window, match)
		w := listWant{total: count, size: min(limit, count)}
		if newest >= 0 {
			w.first = set.webhookID(newest)
		}
		return w
	}
	window := min(n, monitor.SearchWindow)

	failed := list(n, dashboardLimit, set.failed)
	failed.status = sendhooks.StatusFailed
	success := list(n, dashboardLimit, func(i int) bool { return !set.failed(i) })
	success.status = sendhooks.StatusSuccess

	day := set.now.Add(-orderDays * 24 * time.Hour / 2).Truncate(24 * time.Hour)
	dayEnd := day.Add(24*time.Hour - time.Millisecond)
	onDay := list(n, dashboardLimit, func(i int) bool {
		c := set.created(i)
		return !c.Before(day) && !c.After(dayEnd)
	})

	// Delivered in the last 6 hours: among the newest SearchWindow
	// webhooks (the last 17 hours at a million), so every match is counted;
	// the count says it is a lower bound once the window is full.
	since := set.now.Add(-6 * time.Hour)
	delivered := list(window, dashboardLimit, func(i int) bool {
		d := set.delivered(i)
		return !d.IsZero() && !d.Before(since)
	})
	delivered.lowerBound = n >= monitor.SearchWindow

	page := deepPageOf(n)
	offset := (page - 1) * deepLimit
	deep := listWant{total: n, size: min(deepLimit, n-offset), first: set.webhookID(n - 1 - offset)}
	deepPath := fmt.Sprintf("/hooks?page=%d&limit=%d", page, deepLimit)
	body, err := apiGet(ctx, client, p.api+web.APIPrefix+deepPath)
	if err != nil {
		return nil, fmt.Errorf("GET %s for its older cursor: %w", deepPath, err)
	}
	var deepAnswer listBody
	if err := json.Unmarshal(body, &deepAnswer); err != nil || deepAnswer.Meta.Older == "" {
		return nil, fmt.Errorf("GET %s: no older cursor in %.300s", deepPath, body)
	}
	keysetAt := offset + deepLimit
	keyset := listWant{total: n, size: min(deepLimit, n-keysetAt), first: set.webhookID(n - 1 - keysetAt)}

	fragment := fmt.Sprintf("receiver-%02d.", 7)
	someURLs := list(window, dashboardLimit, func(i int) bool { return set.receiver(i) == 7 })
	someURLs.lowerBound, someURLs.urlContains = n >= monitor.SearchWindow, fragment
	nothing := listWant{lowerBound: n >= monitor.SearchWindow, partial: n >= monitor.SearchWindow}

	mid := n / 2
	for !set.failed(mid) {
		mid++
	}
	exactID := listWant{total: 1, size: 1, first: set.webhookID(mid)}

	stats := func(from time.Time, bucket time.Duration) monitorRequest {
		q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {set.now.Format(time.RFC3339Nano)}, "bucket": {bucket.String()}}
		name := fmt.Sprintf("stats, %s in %s buckets", span(set.now.Sub(from)), span(bucket))
		return api(name, "/stats?"+q.Encode(), targetStats, wantStats(set, from, bucket))
	}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "/hooks?" + v.Encode()
	}
	first := list(n, dashboardLimit, all)
	reqs := []monitorRequest{
		api("list, first page (limit 20), with total", q("page", "1", "limit", "20"), targetList, wantList(first)),
		api("list status=failed", q("limit", "20", "status", "failed"), targetList, wantList(failed)),
		api("list status=success,retrying", q("limit", "20", "status", "success,retrying"), targetList, wantList(success)),
		api("list created on one day", q("limit", "20", "createdStartDate", day.Format(time.DateOnly), "createdEndDate", day.Format(time.DateOnly)),
			targetList, wantList(onDay)),
		api("list delivered in the last 6 h", q("limit", "20", "deliveredStartDate", since.Format(time.RFC3339Nano)), targetList, wantList(delivered)),
		api(fmt.Sprintf("list page=%d&limit=%d (offset %d)", page, deepLimit, offset), deepPath, targetList, wantList(deep)),
		api("list keyset step (older= cursor, limit 100)", q("limit", strconv.Itoa(deepLimit), "older", deepAnswer.Meta.Older), targetList, wantList(keyset)),
		api("search, exact webhookId", q("limit", "20", "search", set.webhookID(mid)), targetPoint, wantList(exactID)),
		api("search, substring of 1 URL in 50", q("limit", "20", "search", fragment), targetSubstring, wantList(someURLs)),
		api("search, substring matching nothing", q("limit", "20", "search", "no-such-order-zz"), targetSubstring, wantList(nothing)),
		api("webhook detail GET /hooks/{id}", "/hooks/"+url.PathEscape(set.streamID(mid)), targetPoint, wantHook(set, mid)),
		stats(set.now.Add(-24*time.Hour), time.Hour),
		stats(set.now.Add(-orderDays*24*time.Hour), 6*time.Hour),
	}
	newest := set.webhookID(n - 1)
	reqs = append(reqs, monitorRequest{name: "dashboard HTML list page GET /", path: "/", url: p.dash + "/",
		check: func(body []byte) error {
			if !strings.Contains(string(body), ">"+newest+"<") {
				return fmt.Errorf("the page does not show the newest webhook, %s", newest)
			}
			return nil
		}})
	return reqs, nil
}

// listBody is what the checks read of a list answer.
type listBody struct {
	Data []struct {
		ID         string           `json:"_id"`
		ExternalID string           `json:"externalId"`
		Status     sendhooks.Status `json:"status"`
		URL        string           `json:"url"`
	} `json:"data"`
	Meta struct {
		TotalItems        int    `json:"totalItems"`
		TotalIsLowerBound bool   `json:"totalIsLowerBound"`
		SearchPartial     bool   `json:"searchPartial"`
		Older             string `json:"older"`
	} `json:"meta"`
}

// listWant is what a list answer must say.
type listWant struct {
	total       int
	lowerBound  bool
	partial     bool
	size        int
	first       string           // the first webhook's webhookId, when size > 0
	status      sendhooks.Status // every webhook's, when set
	urlContains string           // in every webhook's url, when set
}

// wantList checks a list answer against w.
func wantList(w listWant) func([]byte) error {
	return func(body []byte) error {
		var a listBody
		if err := json.Unmarshal(body, &a); err != nil {
			return fmt.Errorf("the answer is not a list: %w", err)
		}
		m := a.Meta
		switch {
		case m.TotalItems != w.total || m.TotalIsLowerBound != w.lowerBound:
			return fmt.Errorf("totalItems %d (lower bound %t), want %d (lower bound %t)", m.TotalItems, m.TotalIsLowerBound, w.total, w.lowerBound)
		case m.SearchPartial != w.partial:
			return fmt.Errorf("searchPartial %t, want %t", m.SearchPartial, w.partial)
		case len(a.Data) != w.size:
			return fmt.Errorf("%d webhooks, want %d", len(a.Data), w.size)
		case w.size > 0 && a.Data[0].ExternalID != w.first:
			return fmt.Errorf("the first webhook is %q, want %q", a.Data[0].ExternalID, w.first)
		}
		for _, h := range a.Data {
			if w.status != "" && h.Status != w.status {
				return fmt.Errorf("webhook %s is %s, want only %s", h.ExternalID, h.Status, w.status)
			}
			if !strings.Contains(h.URL, w.urlContains) {
				return fmt.Errorf("webhook %s's url %s lacks %q", h.ExternalID, h.URL, w.urlContains)
			}
		}
		return nil
	}
}

// wantHook checks the detail of webhook i: a failed one, retried twice.
func wantHook(set *orderSet, i int) func([]byte) error {
	return func(body []byte) error {
		var h struct {
			ID         string            `json:"_id"`
			ExternalID string            `json:"externalId"`
			MessageID  string            `json:"messageId"`
			Status     sendhooks.Status  `json:"status"`
			Attempts   []json.RawMessage `json:"attempts"`
		}
		if err := json.Unmarshal(body, &h); err != nil {
			return fmt.Errorf("the answer is not a webhook: %w", err)
		}
		want := []any{set.streamID(i), set.webhookID(i), set.messageID(i), set.finalStatus(i), set.retries(i) + 1}
		if got := []any{h.ID, h.ExternalID, h.MessageID, h.Status, len(h.Attempts)}; fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("id, webhookId, messageId, status, attempts %v, want %v", got, want)
		}
		return nil
	}
}

// receiverURL is the form of the receivers of the order set's URLs.
var receiverURL = regexp.MustCompile(`^https://receiver-[0-9]{2}\.example\.com$`)

// wantStats checks statistics of [from, set.now] in buckets of bucket,
// whole hours: they count the webhooks whose created hour starts in
// [from's hour, now] (hourly rollups).
func wantStats(set *orderSet, from time.Time, bucket time.Duration) func([]byte) error {
	lo := from.Truncate(time.Hour)
	want := map[sendhooks.Status]int{}
	total := 0
	for i := range set.n {
		if h := set.created(i).Truncate(time.Hour); !h.Before(lo) && !h.After(set.now) {
			want[set.finalStatus(i)]++
			total++
		}
	}
	buckets := 0
	for t := from; !t.After(set.now); t = t.Add(bucket) {
		buckets++
	}
	return func(body []byte) error {
		var st struct {
			Total            int                      `json:"total"`
			ByStatus         map[sendhooks.Status]int `json:"byStatus"`
			Buckets          []json.RawMessage        `json:"buckets"`
			FailingEndpoints []struct {
				URL string `json:"url"`
			} `json:"failingEndpoints"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("the answer is not statistics: %w", err)
		}
		got := map[sendhooks.Status]int{}
		for k, v := range st.ByStatus {
			if v != 0 {
				got[k] = v
			}
		}
		if st.Total != total || fmt.Sprint(got) != fmt.Sprint(want) || len(st.Buckets) != buckets {
			return fmt.Errorf("total %d, byStatus %v, %d buckets; want %d, %v, %d", st.Total, got, len(st.Buckets), total, want, buckets)
		}
		// Failures count per receiver, whatever token each URL holds.
		if (len(st.FailingEndpoints) == 0) != (want[sendhooks.StatusFailed] == 0) {
			return fmt.Errorf("%d failing endpoints for %d failed webhooks", len(st.FailingEndpoints), want[sendhooks.StatusFailed])
		}
		for _, e := range st.FailingEndpoints {
			if !receiverURL.MatchString(e.URL) {
				return fmt.Errorf("failing endpoint %q is not a receiver", e.URL)
			}
		}
		return nil
	}
}

// span shows whole days past one, or hours: "7 d", "24 h".
func span(d time.Duration) string {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d d", d/(24*time.Hour))
	}
	return fmt.Sprintf("%d h", d/time.Hour)
}
