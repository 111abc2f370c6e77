package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/templates/layout"
	"github.com/sendhooks/sendhooks/templates/stats"
)

// statsPage answers GET /stats?range=: the charts of the hooks created in
// the range (stats.Ranges; the last 24 hours by default) and the engine's
// queues.
func (d *dashboard) statsPage(c echo.Context) error {
	p := newParams(c.QueryParams(), "range")
	if p.err != nil {
		return p.err
	}
	r := stats.Ranges[0]
	if name := c.QueryParam("range"); name != "" {
		found := false
		for _, x := range stats.Ranges {
			if x.Name == name {
				r, found = x, true
			}
		}
		if !found {
			return badParameter("range must be 1h, 24h or 7d, got %q", name)
		}
	}
	to := d.cfg.Now().UTC()
	from := to.Add(-r.Span).Truncate(r.Bucket).Add(r.Bucket)
	st, err := d.store.Stats(c.Request().Context(), monitor.StatsQuery{From: from, To: to, Bucket: r.Bucket})
	if err != nil {
		return err
	}
	data := stats.Data{Range: r, Stats: st, Health: d.health(c.Request().Context())}
	return render(c, http.StatusOK, stats.Page(d.page(c, "Stats", layout.NavStats), data))
}

// health asks the engine-health callback, within healthTimeout; a failure
// is logged and shown as not available.
func (d *dashboard) health(ctx context.Context) stats.Health {
	if d.cfg.Health == nil {
		return stats.Health{Problem: "the monitor was started without access to the engine's Redis"}
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	h, err := d.cfg.Health(ctx)
	if err != nil {
		d.cfg.Logger.Warn("engine health for the stats page", "err", err)
		return stats.Health{Problem: "Redis did not answer"}
	}
	return stats.Health{Available: true, RetrySet: h.RetrySet, Lag: h.Lag, Pending: h.Pending, Streams: h.Streams}
}
