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
	maxPage      = 1_000_000
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

// newParams reads q for a route that only reads: a parameter it does not
// know is ignored, as the old API ignored it (a cache-buster such as
// _=1716544800000), unless its name is shaped as an operator or a field
// path (status[$ne], status.$ne, $where) or is a known name in another
// case (Status): those are refused, so a filter is never dropped or read
// as an operator. A known parameter given twice is refused.
func newParams(q url.Values, allowed ...string) *params {
	return checkParams(q, false, allowed)
}

// newStrictParams reads q for a route that changes state (a bulk retry):
// every parameter it does not know is refused too, since a misspelt
// filter that was ignored would retry more webhooks than meant.
func newStrictParams(q url.Values, allowed ...string) *params {
	return checkParams(q, true, allowed)
}

func checkParams(q url.Values, strict bool, allowed []string) *params {
	p := &params{q: q}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(allowed, k) {
			if len(q[k]) > 1 {
				p.fail(badParameter("%s must be given once, got %d values", k, len(q[k])))
			}
			continue
		}
		if err := unknownParameter(k, strict, allowed); err != nil {
			p.fail(err)
		}
	}
	return p
}

// unknownParameter says why the parameter k, which allowed does not hold,
// is refused, or returns nil when it is ignored.
func unknownParameter(k string, strict bool, allowed []string) error {
	list := strings.Join(allowed, ", ")
	if !plainName(k) {
		return badParameter("parameter %q is refused: its name is shaped as an operator or a field path "+
			"(a name holds letters, digits, _ and - only); allowed: %s", k, list)
	}
	for _, a := range allowed {
		if strings.EqualFold(a, k) {
			return badParameter("unknown parameter %q: names are case-sensitive, did you mean %s?", k, a)
		}
	}
	if strict {
		return badParameter("unknown parameter %q; allowed: %s", k, list)
	}
	return nil
}

// plainName reports whether k could be an ignored parameter: empty, or
// ASCII letters, digits, _ and - only. Anything else ($, [, ], ., {, },
// spaces, …) is the shape of an operator, a field path or a mistake.
func plainName(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (p *params) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// leadingInt reads s as JavaScript's parseInt(s, 10), which the old API
// used for page and limit: white space, a sign, then the longest run of
// decimal digits, the rest ignored ("2abc" and "2.5" are 2). digits is
// that run without its leading zeros ("" for zero); ok is false when no
// digit comes first.
func leadingInt(s string) (digits string, negative, ok bool) {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == '+' || s[0] == '-') {
		negative, s = s[0] == '-', s[1:]
	}
	n := 0
	for n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return strings.TrimLeft(s[:n], "0"), negative, n > 0
}

// page reads the page number: a value that is not at least 1 as the old
// API read it (missing, 0, negative, abc) is def. A page past hi is
// refused: the old API's deep pages scanned all history.
func (p *params) page(def, hi int) int {
	digits, negative, ok := leadingInt(p.q.Get("page"))
	if !ok || negative || digits == "" {
		return def
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > hi {
		p.fail(badParameter("page %s is past page %d; page through older webhooks with the older cursor of meta", digits, hi))
		return def
	}
	return n
}

// limit reads the page size: a value that is not at least 1 (missing, 0,
// negative, abc) is def, and one above hi is hi; capped says so.
func (p *params) limit(def, hi int) (n int, capped bool) {
	digits, negative, ok := leadingInt(p.q.Get("limit"))
	if !ok || negative || digits == "" {
		return def, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > hi {
		return hi, true
	}
	return n, false
}

// time reads a date or time in one of the forms parseDate knows; a date
// alone means the start of that day (UTC), or its end when endOfDay is
// set.
func (p *params) time(name string, endOfDay bool) time.Time {
	s := strings.TrimSpace(p.q.Get(name))
	if s == "" {
		return time.Time{}
	}
	t, ok := parseDate(s, endOfDay)
	if !ok {
		p.fail(badParameter("%s must be %s, got %q", name, dateForms, s))
	}
	return t
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
// page number the answer reports (1 when a cursor is given), and capped
// says that the limit asked for was above maxLimit.
func (p *params) listQuery(defLimit int) (q monitor.ListQuery, page int, capped bool) {
	page = p.page(defaultPage, maxPage)
	q.Limit, capped = p.limit(defLimit, maxLimit)
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
	return q, page, capped
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
