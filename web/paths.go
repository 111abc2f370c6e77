package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// trimTrailingSlash serves a path ending in one slash as the path without
// it (/hooks/ as /hooks, /hooks/<id>/ as /hooks/<id>), as the old
// monitor's Express router did and its dashboard relied on. It rewrites
// the request before routing, with no redirect, so nothing leaves the
// site. Only a slash as sent counts: an id ending in %2F keeps it. The
// root and a path ending in two slashes lose one slash at most.
func trimTrailingSlash(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		if p := u.EscapedPath(); len(p) > 1 && strings.HasSuffix(p, "/") {
			u.Path = strings.TrimSuffix(u.Path, "/")
			if u.RawPath != "" {
				u.RawPath = strings.TrimSuffix(u.RawPath, "/")
			}
		}
		return next(c)
	}
}

// oldListPageSize is the page size of the old dashboard, which never sent
// a limit and so got the old API's 10 webhooks a page.
const oldListPageSize = "10"

// oldList answers GET /hooks, the old dashboard's list, with a redirect
// to this dashboard's list keeping the query string: the filters have
// the same names. An old link's page counted pages of 10 webhooks, so a
// page without a limit gets limit=10 and shows the same webhooks. The
// target is always this site's root (safeNext checks it).
func (d *dashboard) oldList(c echo.Context) error {
	r := c.Request()
	target := "/"
	if raw := r.URL.RawQuery; raw != "" {
		q := c.QueryParams()
		if q.Get("page") != "" && !q.Has("limit") {
			raw += "&limit=" + oldListPageSize
		}
		target += "?" + raw
	}
	return c.Redirect(http.StatusMovedPermanently, safeNext(target))
}
