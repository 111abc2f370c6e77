package web

import (
	"math/big"
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
	if n := bucketCount(from, to, bucket); n > monitor.MaxStatsBuckets {
		return badParameter("bucket %s splits the range into %d buckets; at most %d are allowed", bucket, n, monitor.MaxStatsBuckets)
	}
	st, err := a.store.Stats(c.Request().Context(), monitor.StatsQuery{From: from, To: to, Bucket: bucket})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// bucketCount is how many buckets of width w monitor.BuildStats makes for
// [from, to], from not after to: one per start from from to to. It is
// counted on the dates, not on to.Sub(from), which stops at the largest
// time.Duration (about 292 years) and would let a longer range through.
func bucketCount(from, to time.Time, w time.Duration) int64 {
	span := new(big.Int).Mul(big.NewInt(to.Unix()-from.Unix()), big.NewInt(int64(time.Second)))
	span.Add(span, big.NewInt(int64(to.Nanosecond()-from.Nanosecond())))
	// Years 0000 to 9999 in buckets of a minute or more: fits an int64.
	return span.Quo(span, big.NewInt(int64(w))).Int64() + 1
}
