// Package layout is the frame every dashboard page is drawn in (header,
// navigation, session, assets) and the small parts pages share: status
// badges, times, excerpts.
package layout

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sendhooks/sendhooks"
)

// Navigation targets of the header.
const (
	NavHooks = "hooks"
	NavStats = "stats"
)

// Page is what the layout needs to know about the page it frames.
type Page struct {
	// Title is the page's own title; the product name is appended.
	Title string
	// Nav is the header link to mark as current (NavHooks, NavStats).
	Nav string
	// CSRF is the session's token, sent by htmx on every request and by
	// every form as the csrf field.
	CSRF string
	// Open says that no credentials are configured: anyone who reaches
	// the dashboard may use it, and the header says so.
	Open bool
	// User is the signed-in user; empty when open or not signed in.
	User string
	// Refresh is the htmx polling interval of live fragments ("5s").
	Refresh string
}

// HTMXHeaders is the hx-headers value that makes htmx send the CSRF token.
func (p Page) HTMXHeaders() string {
	return fmt.Sprintf(`{"X-CSRF-Token": %q}`, p.CSRF)
}

// Every is the hx-trigger of a fragment that polls.
func (p Page) Every() string {
	return "every " + p.Refresh
}

// navCurrent is the aria-current value of a header link.
func (p Page) navCurrent(nav string) string {
	if p.Nav == nav {
		return "page"
	}
	return "false"
}

// TimeText shows a time in UTC to the second, or "—" when unknown.
func TimeText(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// OrDash is s, or "—" when it is empty.
func OrDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// timeAttr is a time for a datetime attribute.
func timeAttr(t *time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// StatusClass is the CSS class that colours a status.
func StatusClass(s sendhooks.Status) string {
	switch s {
	case sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusRetrying:
		return "status status-" + string(s)
	}
	return "status status-other"
}

// statusText is a status as shown; unknown statuses show as they are.
func statusText(s sendhooks.Status) string {
	if s == "" {
		return "unknown"
	}
	return string(s)
}

// Excerpt is s on one line, cut to at most n characters with an ellipsis.
func Excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Millis shows a duration in milliseconds.
func Millis(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.1f ms", ms)
	}
}
