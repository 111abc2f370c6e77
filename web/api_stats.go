package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks/monitor"
)

// Defaults of the statistics' range and bucket width.
const (
	defaultStatsRange  = 24 * time.Hour
	defaultStatsBucket = time.Hour
)

// stats answers GET /stats?from=&to=&bucket=: statistics of the hooks
// created in [from, to], by default the last 24 hours in hourly buckets.
func (a *api) stats(c echo.Context) error {
	p := newParams(c.QueryParams(), "from", "to", "bucket")
	to := p.time("to", true)
	if to.IsZero() {
		to = a.cfg.Now()
	}
	from := p.time("from", false)
	if from.IsZero() {
		from = to.Add(-defaultStatsRange)
	}
	bucket := p.duration("bucket", defaultStatsBucket, time.Minute)
	p.checkRange("from", from, "to", to)
	if p.err != nil {
		return p.err
	}
	if n := to.Sub(from)/bucket + 1; n > monitor.MaxStatsBuckets {
		return badParameter("bucket %s splits the range into %d buckets; at most %d are allowed", bucket, n, monitor.MaxStatsBuckets)
	}
	st, err := a.store.Stats(c.Request().Context(), monitor.StatsQuery{From: from, To: to, Bucket: bucket})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
