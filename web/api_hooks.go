package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// maxBulkRetry bounds how many hooks one bulk retry queues.
const maxBulkRetry = 1000

// listMeta is the paging part of the list answer: the old API's four
// keys, then the cursors of the neighbouring pages and what bounded the
// count.
type listMeta struct {
	TotalItems   int64 `json:"totalItems"`
	TotalPages   int64 `json:"totalPages"`
	CurrentPage  int   `json:"currentPage"`
	ItemsPerPage int   `json:"itemsPerPage"`
	// LimitCapped says that the limit asked for was above 100, the most
	// one page holds: the page holds up to ItemsPerPage (100) webhooks,
	// and TotalPages counts pages of that size.
	LimitCapped bool `json:"limitCapped,omitempty"`
	// TotalIsLowerBound says the count stopped at a bound (a substring
	// search looks through the newest 100,000 webhooks of the other
	// filters): at least TotalItems match.
	TotalIsLowerBound bool `json:"totalIsLowerBound,omitempty"`
	// SearchPartial says a substring search reached its window before it
	// filled the page; older holds where the next window starts.
	SearchPartial bool `json:"searchPartial,omitempty"`
	// Older and Newer are cursors for the older= and newer= parameters:
	// the pages after and before this one.
	Older string `json:"older,omitempty"`
	Newer string `json:"newer,omitempty"`
}

// listAnswer is the list's data/meta envelope.
type listAnswer struct {
	Data []monitor.Hook `json:"data"`
	Meta listMeta       `json:"meta"`
}

// listHooks answers GET /hooks: one page of the hooks the filters select,
// newest created first, by page and limit (the old API) or by the older
// and newer cursors. It reads page and limit as the old API did (see
// params.page and params.limit) and ignores parameters it does not know.
func (a *api) listHooks(c echo.Context) error {
	p := newParams(c.QueryParams(), append([]string{"page", "limit", "older", "newer"}, filterParams...)...)
	q, page, capped := p.listQuery(defaultLimit)
	if p.err != nil {
		return p.err
	}
	res, err := a.store.List(c.Request().Context(), q)
	if err != nil {
		return err
	}
	data := res.Hooks
	if data == nil {
		data = []monitor.Hook{}
	}
	meta := listMeta{
		TotalItems:        res.Total,
		TotalPages:        (res.Total + int64(q.Limit) - 1) / int64(q.Limit),
		CurrentPage:       page,
		ItemsPerPage:      q.Limit,
		LimitCapped:       capped,
		TotalIsLowerBound: res.TotalAtLeast,
		SearchPartial:     res.Partial,
	}
	if res.Older != nil {
		meta.Older = res.Older.String()
	}
	if res.Newer != nil {
		meta.Newer = res.Newer.String()
	}
	return c.JSON(http.StatusOK, listAnswer{Data: data, Meta: meta})
}

// getHook answers GET /hooks/:id.
func (a *api) getHook(c echo.Context) error {
	h, err := a.hook(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h)
}

// hook loads the hook named by the path's id.
func (a *api) hook(c echo.Context) (monitor.Hook, error) {
	id := pathID(c)
	h, err := a.store.Get(c.Request().Context(), id) // "" (POST /hooks//retry) is not found
	if errors.Is(err, monitor.ErrNotFound) {
		return h, &statusError{http.StatusNotFound, apiError{Code: "HOOK_NOT_FOUND", Description: fmt.Sprintf("no webhook has the id %q", id)}}
	}
	return h, err
}

// retryHook answers POST /hooks/:id/retry: the hook's job goes back on the
// jobs stream as its next attempt.
func (a *api) retryHook(c echo.Context) error {
	h, err := a.hook(c)
	if err != nil {
		return err
	}
	q, err := a.retrier.Retry(c.Request().Context(), h)
	switch {
	case errors.Is(err, monitor.ErrAlreadyQueued):
		return &statusError{http.StatusConflict, apiError{Code: "ALREADY_QUEUED", Description: err.Error()}}
	case errors.Is(err, monitor.ErrNotRetriable):
		return &statusError{http.StatusConflict, apiError{Code: "NOT_RETRIABLE", Description: err.Error()}}
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, q)
}

// bulkRetryAnswer says what a bulk retry did.
type bulkRetryAnswer struct {
	// Matched is how many failed hooks the filters selected (at most
	// maxBulkRetry are looked at).
	Matched int `json:"matched"`
	// Queued is how many of them were put back on the jobs stream.
	Queued int `json:"queued"`
	// Skipped is how many could not be retried: no job payload known, or
	// a retry already queued or under way.
	Skipped int `json:"skipped"`
	// Truncated says that more hooks matched than one call retries.
	Truncated bool `json:"truncated"`
	// SearchPartial says a substring search or a delivered range reached
	// the end of its window (the newest 100,000 failed webhooks of the
	// other filters) before it found maxBulkRetry hooks: older ones may
	// match too and were not looked at; narrow createdEndDate to reach
	// them. Present (true) only then, as in the list's meta.
	SearchPartial bool             `json:"searchPartial,omitempty"`
	Hooks         []monitor.Queued `json:"hooks"`
}

// retryHooks answers POST /hooks/retry: the failed hooks that the list's
// filters select go back on the jobs stream. Every parameter it does not
// know is refused (newStrictParams).
func (a *api) retryHooks(c echo.Context) error {
	p := newStrictParams(c.QueryParams(), filterParams...)
	f := p.filter()
	if p.err != nil {
		return p.err
	}
	if len(f.Statuses) > 0 && !slices.Equal(f.Statuses, []sendhooks.Status{sendhooks.StatusFailed}) {
		return badParameter("status must be failed or left out: only failed webhooks are retried in bulk, got %q", c.QueryParam("status"))
	}
	f.Statuses = []sendhooks.Status{sendhooks.StatusFailed}
	hooks, partial, err := monitor.Collect(c.Request().Context(), a.store, f, maxBulkRetry+1)
	if err != nil {
		return err
	}
	ans := bulkRetryAnswer{SearchPartial: partial, Hooks: []monitor.Queued{}}
	if len(hooks) > maxBulkRetry {
		hooks, ans.Truncated = hooks[:maxBulkRetry], true
	}
	queued, err := a.retrier.RetryAll(c.Request().Context(), hooks)
	if err != nil {
		return err
	}
	ans.Matched, ans.Queued, ans.Skipped = len(hooks), len(queued), len(hooks)-len(queued)
	if queued != nil {
		ans.Hooks = queued
	}
	return c.JSON(http.StatusAccepted, ans)
}
