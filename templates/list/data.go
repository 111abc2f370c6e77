// Package list is the webhooks list page, its live table fragment and the
// confirmation page of a bulk retry.
package list

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"

	"github.com/a-h/templ"

	"github.com/sendhooks/sendhooks/monitor"
)

// Data is one page of the list.
type Data struct {
	// Hooks are the hooks of this page.
	Hooks []monitor.Hook
	// Total is the number of hooks the filters select; with TotalAtLeast,
	// the count stopped at a bound and at least Total match.
	Total        int64
	TotalAtLeast bool
	// Partial says a substring search looked through its whole window
	// (the newest 100,000 webhooks of the other filters) before it filled
	// the page; Older goes on from there.
	Partial bool
	// Limit is the number of hooks per page.
	Limit int
	// Older and Newer are the cursors of the neighbouring pages, "" where
	// the list ends.
	Older, Newer string
	// Query holds the filter parameters (and limit) of this view, without
	// the position: links and the live table keep them.
	Query url.Values
	// Dates are the date filters as the form's date inputs show them
	// (2024-05-24), whatever form the query gave them in.
	Dates map[string]string
	// At is this page's position (older, newer or page), which the live
	// table polls with.
	At url.Values
	// Notice reports what an action did; Problem why the filters failed.
	Notice, Problem string
}

// Filtered says whether any filter is set.
func (d Data) Filtered() bool {
	for k, v := range d.Query {
		if k != "limit" && len(v) > 0 && v[0] != "" {
			return true
		}
	}
	return false
}

// with is the query of this view with the extra parameters.
func (d Data) with(extra url.Values) url.Values {
	q := url.Values{}
	for k, v := range d.Query {
		q[k] = v
	}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

// OlderURL links to the next page of older hooks.
func (d Data) OlderURL() templ.SafeURL {
	return templ.SafeURL("/?" + d.with(url.Values{"older": {d.Older}}).Encode())
}

// NewerURL links to the page of newer hooks before this one.
func (d Data) NewerURL() templ.SafeURL {
	return templ.SafeURL("/?" + d.with(url.Values{"newer": {d.Newer}}).Encode())
}

// NewestURL links to the first page.
func (d Data) NewestURL() templ.SafeURL {
	return templ.SafeURL("/?" + d.with(nil).Encode())
}

// TableURL is where the live table of this page is polled.
func (d Data) TableURL() string {
	return "/partials/hooks?" + d.with(d.At).Encode()
}

// RetryURL is the confirmation page of retrying the failed hooks of this
// view's filters.
func (d Data) RetryURL() templ.SafeURL {
	return templ.SafeURL("/retry-failed?" + d.with(nil).Encode())
}

// Count is the caption's count of hooks: "1,234 webhooks", or "at least
// 1,234 webhooks" when the count stopped at a bound.
func (d Data) Count() string {
	n := strconv.FormatInt(d.Total, 10)
	if d.TotalAtLeast {
		return "at least " + n + " webhooks"
	}
	if d.Total == 1 {
		return "1 webhook"
	}
	return n + " webhooks"
}

// HookURL is the detail page of a hook.
func HookURL(id string) templ.SafeURL {
	return templ.SafeURL("/hooks/" + url.PathEscape(id))
}

// linkID is a stable element id for a hook's link, so that htmx keeps the
// focus on it when the table is refreshed.
func linkID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "hook-" + hex.EncodeToString(sum[:6])
}

// Confirm is the confirmation page of a bulk retry.
type Confirm struct {
	// Count is how many failed hooks the filters select (up to Max).
	Count int
	// Truncated says that more than Max matched, or at least Max; only Max
	// are retried.
	Truncated bool
	// Partial says that Count stopped at a bound below Max (a search's
	// window, monitor.SearchWindow): at least Count match, and the retry,
	// which reads on page by page, may queue more, up to Max.
	Partial bool
	// Max is how many hooks one bulk retry queues at most.
	Max int
	// Query holds the filter parameters, posted back with the confirmation.
	Query url.Values
}

// BackURL returns to the list with the same filters.
func (c Confirm) BackURL() templ.SafeURL {
	return templ.SafeURL("/?" + c.Query.Encode())
}

// fields are the hidden inputs that carry the filters, in a stable order.
func (c Confirm) fields() []field {
	var out []field
	for _, k := range sortedKeys(c.Query) {
		for _, v := range c.Query[k] {
			out = append(out, field{k, v})
		}
	}
	return out
}

type field struct{ name, value string }
