package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// seedFailed stores n failed webhooks whose job the engine reported, so
// that each can be retried.
func seedFailed(t *testing.T, a *testAPI, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		sid := fmt.Sprintf("1767348%06d-0", i)
		a.seed(t, engineEvent(sid, 1, sendhooks.StatusRetrying, 10), engineEvent(sid, 2, sendhooks.StatusFailed, 10))
		ids = append(ids, sid)
	}
	return ids
}

// concurrently runs fn n times at once and returns the answers' statuses.
func concurrently(n int, fn func() int) map[int]int {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		got = map[int]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			s := fn()
			mu.Lock()
			got[s]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}

// TestRetriesAreQueuedOnce sends the same retries at once: two bulk
// retries of 5 failed webhooks queue 5 jobs, not 10; ten retries of one
// webhook queue one job and answer the others 409 ALREADY_QUEUED. Once the
// engine reports the retried attempt, the webhook can be retried again.
func TestRetriesAreQueuedOnce(t *testing.T) {
	a := startAPI(t, APIConfig{})
	ids := seedFailed(t, a, 5)

	got := concurrently(2, func() int {
		status, _, _ := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/retry", nil)
		return status
	})
	if got[http.StatusAccepted] != 2 {
		t.Fatalf("bulk retries answered %v, want two 202", got)
	}
	if n := queuedJobs(t, a.rdb); n != 5 {
		t.Fatalf("two bulk retries of 5 webhooks queued %d jobs, want 5", n)
	}
	var ans bulkRetryAnswer
	a.getJSONPost(t, "/api/sendhooks/v1/hooks/retry", &ans)
	if ans.Matched != 5 || ans.Queued != 0 || ans.Skipped != 5 {
		t.Fatalf("a third bulk retry: %+v, want 5 matched, 0 queued, 5 skipped", ans)
	}

	// The engine takes attempt 3 of the first webhook up: it fails again.
	a.seed(t, engineEvent(ids[0], 3, sendhooks.StatusFailed, 10))
	before := queuedJobs(t, a.rdb)
	got = concurrently(10, func() int {
		status, _, _ := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/"+ids[0]+"/retry", nil)
		return status
	})
	if got[http.StatusAccepted] != 1 || got[http.StatusConflict] != 9 {
		t.Fatalf("ten retries of one webhook answered %v, want one 202 and nine 409", got)
	}
	if n := queuedJobs(t, a.rdb) - before; n != 1 {
		t.Fatalf("ten retries of one webhook queued %d jobs, want 1", n)
	}
	status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/"+ids[0]+"/retry", nil)
	if status != http.StatusConflict || !strings.HasPrefix(body, `{"code":"ALREADY_QUEUED","description":"hook is queued for a retry already: attempt 4`) {
		t.Fatalf("retry of a queued webhook: %d %s", status, body)
	}
	// A webhook the engine is retrying on its schedule is queued already too.
	a.seed(t, engineEvent(ids[0], 4, sendhooks.StatusRetrying, 10))
	if status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/"+ids[0]+"/retry", nil); status != http.StatusConflict || !strings.Contains(body, `"ALREADY_QUEUED"`) {
		t.Fatalf("retry of a retrying webhook: %d %s", status, body)
	}
	a.seed(t, engineEvent(ids[0], 5, sendhooks.StatusFailed, 10))
	if status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/"+ids[0]+"/retry", nil); status != http.StatusAccepted {
		t.Fatalf("retry after the engine reported the retried attempts: %d %s", status, body)
	}
}

// TestDashboardRetryIsQueuedOnce double-clicks, ten times over, the Retry
// button of one webhook: one job is queued, and the page shows the retry
// as queued with the button disabled.
func TestDashboardRetryIsQueuedOnce(t *testing.T) {
	d := startDashboard(t, nil)
	ids := seedFailed(t, &testAPI{store: d.store}, 1)
	token := d.csrf(t, "/hooks/"+ids[0])
	got := concurrently(10, func() int {
		status, _, _ := d.post(t, "/hooks/"+ids[0]+"/retry", url.Values{"csrf": {token}})
		return status
	})
	if got[http.StatusSeeOther] != 1 || got[http.StatusConflict] != 9 {
		t.Fatalf("ten retries answered %v, want one 303 and nine 409", got)
	}
	if n := queuedJobs(t, d.rdb); n != 1 {
		t.Fatalf("ten clicks queued %d jobs, want 1", n)
	}
	_, _, body := d.get(t, "/hooks/"+ids[0])
	if !strings.Contains(body, `<button id="retry-button" type="submit" disabled>`) || !strings.Contains(body, "A retry is queued (attempt 3)") {
		t.Fatalf("the page after the retry:\n%s", body)
	}
	h, err := d.store.Get(context.Background(), ids[0])
	if err != nil || h.RetryQueued != 3 || h.RetryQueuedAt == nil {
		t.Fatalf("stored mark: %d %v (%v), want attempt 3", h.RetryQueued, h.RetryQueuedAt, err)
	}
	// The engine takes it up: the mark is gone.
	if err := d.store.Apply(context.Background(), []monitor.Event{{StatusEvent: engineEvent(ids[0], 3, sendhooks.StatusSuccess, 10)}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := d.store.Get(context.Background(), ids[0]); h.RetryQueued != 0 || h.RetryQueuedAt != nil {
		t.Fatalf("mark after the engine reported attempt 3: %d %v", h.RetryQueued, h.RetryQueuedAt)
	}
}
