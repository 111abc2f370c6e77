package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// Defaults and bounds of the list's paging.
const (
	defaultPage  = 1
	defaultLimit = 10
	maxLimit     = 100
)

// filterParams are the query parameters that select hooks.
var filterParams = []string{"status", "createdStartDate", "createdEndDate", "deliveredStartDate", "deliveredEndDate", "search"}

// statuses are the values the status parameter accepts.
var statuses = []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusRetrying}

// maxBodyBytes bounds a request's body: the API reads none, and the
// dashboard's forms hold a few filters.
const maxBodyBytes = 1 << 20

// errTooLarge answers a body over maxBodyBytes.
var errTooLarge = &statusError{http.StatusRequestEntityTooLarge, apiError{Code: "TOO_LARGE",
	Description: "the request body must be at most " + strconv.Itoa(maxBodyBytes) + " bytes"}}

// strictRequest bounds the request's body and refuses a query string or a
// form that does not parse whole. url.Values silently drops the pairs it
// cannot read (a bad escape, a semicolon, more than 10000 parameters), and
// a filter dropped that way selects more hooks, not fewer.
func strictRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxBodyBytes {
			return errTooLarge
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
		err := r.ParseForm()
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return errTooLarge
		case err != nil:
			return badParameter("the query string or form does not parse: %v", err)
		}
		return next(c)
	}
}

// params reads query parameters. Its methods record the first error, so
// that a handler reads all it needs and then checks err once.
type params struct {
	q   url.Values
	err error
}

// newParams checks that q holds only the allowed parameters, each once,
// so that a key such as status[$ne] is refused, not ignored.
func newParams(q url.Values, allowed ...string) *params {
	p := &params{q: q}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !slices.Contains(allowed, k):
			p.fail(badParameter("unknown parameter %q; allowed: %s", k, strings.Join(allowed, ", ")))
		case len(q[k]) > 1:
			p.fail(badParameter("%s must be given once, got %d values", k, len(q[k])))
		}
	}
	return p
}

func (p *params) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// intIn reads a whole number from lo to hi; missing or empty means def.
func (p *params) intIn(name string, def, lo, hi int) int {
	s := strings.TrimSpace(p.q.Get(name))
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.fail(badParameter("%s must be a whole number from %d to %d, got %q", name, lo, hi, s))
		return def
	}
	return n
}

// time reads an ISO date (2024-05-24) or an RFC 3339 time. A date alone
// means the start of that day (UTC), or its end when endOfDay is set.
func (p *params) time(name string, endOfDay bool) time.Time {
	s := strings.TrimSpace(p.q.Get(name))
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		p.fail(badParameter("%s must be a date (2024-05-24) or an RFC 3339 time (2024-05-24T10:00:00Z), got %q", name, s))
		return time.Time{}
	}
	if endOfDay {
		return d.AddDate(0, 0, 1).Add(-time.Millisecond)
	}
	return d
}

// duration reads a Go duration of at least lo; missing means def.
func (p *params) duration(name string, def, lo time.Duration) time.Duration {
	s := strings.TrimSpace(p.q.Get(name))
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo {
		p.fail(badParameter("%s must be a duration of at least %s such as 1h or 15m, got %q", name, lo, s))
		return def
	}
	return d
}

// filter reads the parameters that select hooks.
func (p *params) filter() monitor.Filter {
	f := monitor.Filter{
		CreatedFrom:   p.time("createdStartDate", false),
		CreatedTo:     p.time("createdEndDate", true),
		DeliveredFrom: p.time("deliveredStartDate", false),
		DeliveredTo:   p.time("deliveredEndDate", true),
		Search:        p.q.Get("search"),
	}
	if !utf8.ValidString(f.Search) || strings.ContainsRune(f.Search, 0) {
		p.fail(badParameter("search must be UTF-8 text without NUL characters, got %q", f.Search))
	} else if n := utf8.RuneCountInString(f.Search); n > monitor.MaxSearchLength {
		p.fail(badParameter("search must be at most %d characters long, got %d", monitor.MaxSearchLength, n))
	}
	for _, s := range strings.Split(p.q.Get("status"), ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		if !slices.Contains(statuses, sendhooks.Status(s)) {
			p.fail(badParameter("status must be success, failed or retrying (or a comma list of them), got %q", p.q.Get("status")))
			break
		}
		f.Statuses = append(f.Statuses, sendhooks.Status(s))
	}
	p.checkRange("createdStartDate", f.CreatedFrom, "createdEndDate", f.CreatedTo)
	p.checkRange("deliveredStartDate", f.DeliveredFrom, "deliveredEndDate", f.DeliveredTo)
	return f
}

// listQuery reads page, limit, older, newer and the filters; page is the
// page number the answer reports (1 when a cursor is given).
func (p *params) listQuery(defLimit int) (q monitor.ListQuery, page int) {
	page = p.intIn("page", defaultPage, 1, 1_000_000)
	q.Limit = p.intIn("limit", defLimit, 1, maxLimit)
	q.Filter = p.filter()
	q.Older, q.Newer = p.cursor("older"), p.cursor("newer")
	switch {
	case q.Older != nil && q.Newer != nil:
		p.fail(badParameter("older and newer cannot both be given"))
	case q.Older != nil || q.Newer != nil:
		page = 1
	}
	q.Offset = (page - 1) * q.Limit
	if q.Offset > monitor.MaxOffset {
		p.fail(badParameter("page %d of %d webhooks starts past the %d newest; use the older cursor of meta to page further", page, q.Limit, monitor.MaxOffset))
	}
	return q, page
}

// cursor reads a list position written by monitor.Cursor.String.
func (p *params) cursor(name string) *monitor.Cursor {
	s := strings.TrimSpace(p.q.Get(name))
	if s == "" {
		return nil
	}
	c, err := monitor.ParseCursor(s)
	if err != nil {
		p.fail(badParameter("%s: %v", name, err))
	}
	return c
}

func (p *params) checkRange(fromName string, from time.Time, toName string, to time.Time) {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		p.fail(badParameter("%s must not be before %s", toName, fromName))
	}
}
