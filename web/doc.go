// Package web serves the monitor over HTTP: the JSON API of the old
// sendhooks-monitoring routes and the new ones (statistics, retries), its
// health checks and metrics, with CORS and optional bearer-token auth.
package web
