package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/templates/detail"
	"github.com/sendhooks/sendhooks/templates/layout"
	"github.com/sendhooks/sendhooks/templates/list"
)

// dashboardLimit is the list's default page size.
const dashboardLimit = 20

// Query parameters of the list that report what a bulk retry did; they
// are not filters, so links and the live table drop them.
const (
	paramQueued  = "queued"
	paramSkipped = "skipped"
	// paramPartial (1) says the search of the bulk retry stopped at the
	// end of its window (monitor.Collect).
	paramPartial = "searchPartial"
)

// listQuery reads the list's filters, position (older, newer, or the old
// page) and limit from q. It returns the data to show and the query to
// run. A page or limit given is kept as it was served (page=0 as 1,
// limit=500 as 100), so that links show what the page shows. strict
// refuses parameters it does not know, for the bulk retry's form.
func listQuery(q url.Values, strict bool) (list.Data, monitor.ListQuery, error) {
	allowed := append([]string{"page", "limit", "older", "newer", paramQueued, paramSkipped, paramPartial}, filterParams...)
	p := newParams(q, allowed...)
	if strict {
		p = newStrictParams(q, allowed...)
	}
	lq, page, _ := p.listQuery(dashboardLimit)
	kept := url.Values{}
	for _, k := range filterParams {
		if v := q.Get(k); v != "" {
			kept.Set(k, v)
		}
	}
	if q.Get("limit") != "" {
		kept.Set("limit", strconv.Itoa(lq.Limit))
	}
	at := url.Values{}
	for _, k := range []string{"older", "newer"} {
		if v := q.Get(k); v != "" {
			at.Set(k, v)
		}
	}
	if q.Get("page") != "" {
		at.Set("page", strconv.Itoa(page))
	}
	return list.Data{Limit: lq.Limit, Query: kept, Dates: dateInputs(q), At: at}, lq, p.err
}

// dateInputs gives the date filters of q as the list's date inputs show
// them, 2024-05-24: a browser leaves such an input blank for any other
// form (an old link's "2024-05-24 00:00:00", Unix milliseconds), and the
// filter would then be lost when the form is sent again.
func dateInputs(q url.Values) map[string]string {
	dates := map[string]string{}
	for _, k := range []string{"createdStartDate", "createdEndDate", "deliveredStartDate", "deliveredEndDate"} {
		if t, ok := parseDate(q.Get(k), false); ok {
			dates[k] = t.UTC().Format(time.DateOnly)
		}
	}
	return dates
}

// loadList fills data with the page of hooks that q selects.
func (d *dashboard) loadList(ctx context.Context, data *list.Data, q monitor.ListQuery) error {
	res, err := d.store.List(ctx, q)
	if err != nil {
		return err
	}
	data.Hooks, data.Total, data.TotalAtLeast, data.Partial = res.Hooks, res.Total, res.TotalAtLeast, res.Partial
	if res.Older != nil {
		data.Older = res.Older.String()
	}
	if res.Newer != nil {
		data.Newer = res.Newer.String()
	}
	return nil
}

// listPage answers GET /: the filters, the live table and the bulk retry.
func (d *dashboard) listPage(c echo.Context) error {
	q := c.QueryParams()
	data, lq, err := listQuery(q, false)
	status := http.StatusOK
	var se *statusError
	switch {
	case errors.As(err, &se):
		status, data.Problem = se.status, se.Description
	case err != nil:
		return err
	default:
		if err := d.loadList(c.Request().Context(), &data, lq); err != nil {
			return err
		}
	}
	// The counts are read as numbers, as the detail page reads its own:
	// a link can carry any text in them, which the banner must not show.
	if n, err := strconv.Atoi(q.Get(paramQueued)); err == nil && n >= 0 && data.Problem == "" {
		data.Notice = fmt.Sprintf("%d failed webhooks queued for retry", n)
		if s, err := strconv.Atoi(q.Get(paramSkipped)); err == nil && s > 0 {
			data.Notice += fmt.Sprintf("; %d could not be retried (the engine did not report their payload)", s)
		}
		data.Notice += "."
		if q.Get(paramPartial) == "1" {
			data.Notice += " The search looked through the newest 100,000 failed webhooks of these filters only: " +
				"older ones may match too (narrow the created dates to reach them)."
		}
	}
	return render(c, status, list.Page(d.page(c, "Webhooks", layout.NavHooks), data))
}

// listTable answers GET /partials/hooks: the live table alone.
func (d *dashboard) listTable(c echo.Context) error {
	data, lq, err := listQuery(c.QueryParams(), false)
	if err != nil {
		return err
	}
	if err := d.loadList(c.Request().Context(), &data, lq); err != nil {
		return err
	}
	return render(c, http.StatusOK, list.Table(d.page(c, "Webhooks", layout.NavHooks), data))
}

// failedFilter narrows f to the failed hooks; ok is false when f selects
// other statuses only, so no failed hook can match.
func failedFilter(f monitor.Filter) (monitor.Filter, bool) {
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, sendhooks.StatusFailed) {
		return f, false
	}
	f.Statuses = []sendhooks.Status{sendhooks.StatusFailed}
	return f, true
}

// confirmRetry answers GET /retry-failed: how many failed hooks the
// filters select, and a form to retry them.
func (d *dashboard) confirmRetry(c echo.Context) error {
	data, lq, err := listQuery(c.QueryParams(), false)
	if err != nil {
		return err
	}
	data.Query.Del("limit")
	conf := list.Confirm{Max: maxBulkRetry, Query: data.Query}
	if f, ok := failedFilter(lq.Filter); ok {
		res, err := d.store.List(c.Request().Context(), monitor.ListQuery{Filter: f, Limit: 1})
		if err != nil {
			return err
		}
		// A count that stopped at a bound (TotalAtLeast) is a lower bound:
		// at the bulk retry's own bound, more may match than are retried;
		// below it, at least that many match, and the retry (monitor.Collect)
		// may find more past the count's window.
		conf.Count = int(min(res.Total, maxBulkRetry))
		conf.Truncated = res.Total > maxBulkRetry || res.TotalAtLeast && res.Total >= maxBulkRetry
		conf.Partial = res.TotalAtLeast && !conf.Truncated
	}
	return render(c, http.StatusOK, list.ConfirmRetry(d.page(c, "Retry failed webhooks", layout.NavHooks), conf))
}

// retryFailed answers POST /retry-failed: the failed hooks the posted
// filters select go back on the jobs stream, and the list says how many.
func (d *dashboard) retryFailed(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return badParameter("the form could not be read: %v", err)
	}
	form.Del(csrfField)
	data, lq, err := listQuery(form, true)
	if err != nil {
		return err
	}
	queued, skipped, partial := 0, 0, false
	if f, ok := failedFilter(lq.Filter); ok {
		var hooks []monitor.Hook
		hooks, partial, err = monitor.Collect(c.Request().Context(), d.store, f, maxBulkRetry)
		if err != nil {
			return err
		}
		q, err := d.retrier.RetryAll(c.Request().Context(), hooks)
		if err != nil {
			return err
		}
		queued, skipped = len(q), len(hooks)-len(q)
	}
	back := data.Query
	back.Set(paramQueued, strconv.Itoa(queued))
	back.Set(paramSkipped, strconv.Itoa(skipped))
	if partial {
		back.Set(paramPartial, "1")
	}
	return c.Redirect(http.StatusSeeOther, "/?"+back.Encode())
}

// pathID is the path's id. Echo leaves a parameter escaped when the path
// needs its raw form (an id holding "/" arrives as %2F).
func pathID(c echo.Context) string {
	id := c.Param("id")
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(id); err == nil {
			return u
		}
	}
	return id
}

// hookData loads the hook of the path's id; a missing hook is answered
// with the not-found page, and ok is false.
func (d *dashboard) hookData(c echo.Context) (data detail.Data, ok bool, err error) {
	id := pathID(c)
	h, err := d.store.Get(c.Request().Context(), id) // "" (POST /hooks//retry) is not found
	if errors.Is(err, monitor.ErrNotFound) {
		return data, false, render(c, http.StatusNotFound, detail.NotFound(d.page(c, "Webhook not found", layout.NavHooks), id))
	}
	if err != nil {
		return data, false, err
	}
	return detail.Data{Hook: h}, true, nil
}

// hookPage answers GET /hooks/:id.
func (d *dashboard) hookPage(c echo.Context) error {
	data, ok, err := d.hookData(c)
	if !ok {
		return err
	}
	if n, err := strconv.Atoi(c.QueryParam(paramQueued)); err == nil && n > 0 {
		data.Notice = fmt.Sprintf("Queued for retry as attempt %d; the attempts below update as the engine works.", n)
	}
	return render(c, http.StatusOK, detail.Page(d.page(c, "Webhook "+data.Hook.ID, layout.NavHooks), data))
}

// hookLive answers GET /partials/hooks/:id: the live part of the page.
func (d *dashboard) hookLive(c echo.Context) error {
	data, ok, err := d.hookData(c)
	if !ok {
		return err
	}
	return render(c, http.StatusOK, detail.Live(d.page(c, "", layout.NavHooks), data))
}

// retryHook answers POST /hooks/:id/retry: the hook's job goes back on the
// jobs stream and the page shows its next attempts; a hook that cannot be
// retried is shown with the reason.
func (d *dashboard) retryHook(c echo.Context) error {
	data, ok, err := d.hookData(c)
	if !ok {
		return err
	}
	q, err := d.retrier.Retry(c.Request().Context(), data.Hook)
	if errors.Is(err, monitor.ErrNotRetriable) || errors.Is(err, monitor.ErrAlreadyQueued) {
		data.Problem = err.Error()
		return render(c, http.StatusConflict, detail.Page(d.page(c, "Webhook "+data.Hook.ID, layout.NavHooks), data))
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/hooks/"+url.PathEscape(data.Hook.ID)+"?"+paramQueued+"="+strconv.Itoa(q.Attempt))
}
