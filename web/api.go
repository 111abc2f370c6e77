package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"

	"github.com/sendhooks/sendhooks/monitor"
)

// APIPrefix is where the API routes live.
const APIPrefix = "/api/sendhooks/v1"

// APIConfig configures the API server.
type APIConfig struct {
	// AllowedOrigins may call the API from a browser; none when empty.
	// "*" allows every origin to read; a request that changes state from
	// a page of another site needs its origin named (see RefuseCrossSite).
	AllowedOrigins []string
	// Token, when set, must be sent as "Authorization: Bearer <Token>" on
	// every route but /healthz, /readyz and the OpenAPI document.
	Token string
	// Ready reports whether the monitor's dependencies answer (/readyz).
	Ready func(context.Context) error
	// Metrics is served on /metrics.
	Metrics prometheus.Gatherer
	// Logger gets one line per server fault.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil), for the statistics' default range.
	Now func() time.Time
}

// api holds what the handlers need.
type api struct {
	store   monitor.Store
	retrier *monitor.Retrier
	cfg     APIConfig
	origins originPolicy
}

// NewAPI returns the JSON API server over store, retrying with retrier.
func NewAPI(store monitor.Store, retrier *monitor.Retrier, cfg APIConfig) *echo.Echo {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &api{store: store, retrier: retrier, cfg: cfg, origins: newOriginPolicy(cfg.AllowedOrigins)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.handleError
	e.Pre(trimTrailingSlash)
	e.Use(strictRequest)
	if len(cfg.AllowedOrigins) > 0 {
		c := cors.New(cors.Options{
			AllowedOrigins: cfg.AllowedOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost},
			AllowedHeaders: []string{"Authorization", "Content-Type", RequestHeader},
			MaxAge:         600,
		})
		e.Pre(echo.WrapMiddleware(c.Handler))
	}

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", a.ready)
	e.GET(OpenAPIPath, serveOpenAPI) // open, as /healthz: the API's description, no data

	auth := a.requireToken
	if cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})), auth)
	}
	// The token first, so that a request without it learns only that.
	g := e.Group(APIPrefix, auth, a.refuseCrossSite)
	g.GET("/hooks", a.listHooks)
	g.GET("/hooks/:id", a.getHook)
	g.POST("/hooks/:id/retry", a.retryHook)
	g.POST("/hooks/retry", a.retryHooks)
	g.GET("/stats", a.stats)
	return e
}

// requireToken lets a request through when no token is configured or the
// request carries it.
func (a *api) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	if a.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(a.cfg.Token))
	return func(c echo.Context) error {
		got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="sendhooks"`)
			return c.JSON(http.StatusUnauthorized, apiError{Code: "UNAUTHORIZED",
				Description: "a valid bearer token is required: Authorization: Bearer <SENDHOOKS_API_TOKEN>"})
		}
		return next(c)
	}
}

func (a *api) ready(c echo.Context) error {
	if a.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		if err := a.cfg.Ready(ctx); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
