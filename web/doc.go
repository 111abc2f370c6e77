// Package web serves the monitor over HTTP: the JSON API of the old
// sendhooks-monitoring routes and the new ones (statistics, retries), its
// health checks and metrics, with CORS and optional bearer-token auth; and
// the dashboard, server-rendered with templ and made live with htmx.
package web

import (
	"net/http"

	"github.com/sendhooks/sendhooks/monitor"
)

// ForService builds the monitor's two HTTP handlers, the JSON API and the
// dashboard, over a monitor service: its store, retrier, readiness,
// metrics and engine queues fill in what api and dash leave to it.
func ForService(svc *monitor.Service, api APIConfig, dash DashboardConfig) (apiHandler, dashboard http.Handler) {
	api.Ready = svc.Ready
	api.Metrics = svc.Gatherer()
	dash.Health = svc.EngineQueues
	return NewAPI(svc.Store(), svc.Retrier(), api), NewDashboard(svc.Store(), svc.Retrier(), dash)
}
