package web

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/static"
	"github.com/sendhooks/sendhooks/templates/errorpage"
	"github.com/sendhooks/sendhooks/templates/layout"
)

// Environment variables of the dashboard (see docs/dashboard.md).
const (
	EnvDashboardUser     = "SENDHOOKS_DASHBOARD_USER"
	EnvDashboardPassword = "SENDHOOKS_DASHBOARD_PASSWORD"
	EnvDashboardSecret   = "SENDHOOKS_DASHBOARD_SESSION_SECRET"
	EnvDashboardSecure   = "SENDHOOKS_DASHBOARD_SECURE_COOKIES"
)

// defaultRefresh is how often live parts of the pages poll.
const defaultRefresh = 5 * time.Second

// healthTimeout bounds the engine-health callback.
const healthTimeout = 2 * time.Second

// DashboardConfig configures the dashboard server.
type DashboardConfig struct {
	// User and Password, when both set, are the credentials of the login
	// form, and every page needs a session. When unset the dashboard is
	// open, and its header says so.
	User, Password string
	// SessionSecret signs the session cookies; a random one is drawn when
	// empty (sessions then end with the process). Give several monitors
	// behind one address the same secret.
	SessionSecret []byte
	// Secure marks the cookies Secure (HTTPS only); set it whenever the
	// dashboard is reached over HTTPS.
	Secure bool
	// Health reports the engine's retry-set size and stream lag for the
	// statistics page; nil shows them as not available.
	Health func(context.Context) (EngineHealth, error)
	// Refresh is how often the live list and timeline poll (5s when 0).
	Refresh time.Duration
	// Logger gets one line per server fault.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// EngineHealth is the engine's state as Redis shows it.
type EngineHealth = monitor.EngineQueues

// LoadDashboardConfig reads the dashboard's settings from getenv
// (os.Getenv in production): SENDHOOKS_DASHBOARD_USER and
// SENDHOOKS_DASHBOARD_PASSWORD (both or neither),
// SENDHOOKS_DASHBOARD_SESSION_SECRET and SENDHOOKS_DASHBOARD_SECURE_COOKIES.
// Health, Logger and the rest are left for the caller.
func LoadDashboardConfig(getenv func(string) string) (DashboardConfig, error) {
	c := DashboardConfig{
		User:          strings.TrimSpace(getenv(EnvDashboardUser)),
		Password:      getenv(EnvDashboardPassword),
		SessionSecret: []byte(getenv(EnvDashboardSecret)),
	}
	if (c.User == "") != (c.Password == "") {
		return DashboardConfig{}, fmt.Errorf("%s and %s must be set together (or neither, for an open dashboard)", EnvDashboardUser, EnvDashboardPassword)
	}
	if s := strings.TrimSpace(getenv(EnvDashboardSecure)); s != "" {
		secure, err := strconv.ParseBool(s)
		if err != nil {
			return DashboardConfig{}, fmt.Errorf("%s must be true or false, got %q", EnvDashboardSecure, s)
		}
		c.Secure = secure
	}
	if n := len(c.SessionSecret); n > 0 && n < 32 {
		return DashboardConfig{}, fmt.Errorf("%s must be at least 32 characters long, got %d", EnvDashboardSecret, n)
	}
	return c, nil
}

// dashboard holds what the dashboard's handlers need.
type dashboard struct {
	store   monitor.Store
	retrier *monitor.Retrier
	cfg     DashboardConfig
	auth    *sessions
}

// NewDashboard returns the dashboard server over store, retrying with
// retrier: the pages /, /hooks/{id} and /stats, the login form when
// credentials are configured, and the embedded assets under /static/.
// The old dashboard's links work: /hooks redirects to /, /hooks/{id}
// is the detail page, and a trailing slash is served as none.
func NewDashboard(store monitor.Store, retrier *monitor.Retrier, cfg DashboardConfig) *echo.Echo {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = defaultRefresh
	}
	if len(cfg.SessionSecret) == 0 {
		cfg.SessionSecret = make([]byte, 32)
		rand.Read(cfg.SessionSecret) // never fails (crypto/rand)
	}
	d := &dashboard{store: store, retrier: retrier, cfg: cfg, auth: newSessions(cfg)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = d.handleError
	e.Pre(trimTrailingSlash)
	e.Use(securityHeaders, strictRequest)

	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticFiles())))
	g := e.Group("", d.auth.middleware)
	g.GET("/login", d.loginForm)
	g.POST("/login", d.login)
	g.POST("/logout", d.logout)
	g.GET("/", d.listPage)
	g.GET("/partials/hooks", d.listTable)
	g.GET("/retry-failed", d.confirmRetry)
	g.GET("/hooks", d.oldList) // the old dashboard's list
	g.POST("/retry-failed", d.retryFailed)
	g.GET("/hooks/:id", d.hookPage)
	g.GET("/partials/hooks/:id", d.hookLive)
	g.POST("/hooks/:id/retry", d.retryHook)
	g.GET("/stats", d.statsPage)
	return e
}

// staticFiles serves the embedded assets; they change only with the
// binary, so browsers may keep them for an hour.
func staticFiles() http.Handler {
	files := http.FileServerFS(static.FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the page's own scripts, styles and
// requests only: nothing inline, no other host.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every answer carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// page is the layout's view of the request.
func (d *dashboard) page(c echo.Context, title, nav string) layout.Page {
	s := sessionOf(c)
	return layout.Page{
		Title:   title,
		Nav:     nav,
		CSRF:    d.auth.csrfToken(s),
		Open:    !d.auth.enabled(),
		User:    s.User,
		Refresh: d.cfg.Refresh.String(),
	}
}

// render writes a component as the HTML answer.
func render(c echo.Context, status int, t templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := t.Render(c.Request().Context(), buf); err != nil {
		return fmt.Errorf("render %s: %w", c.Request().URL.Path, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// clientError tells how an error that is no fault of the server is
// answered: its status and a description for the user. ok is false for a
// fault of the server.
func clientError(err error) (status int, description string, ok bool) {
	var (
		se *statusError
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &se):
		return se.status, se.Description, true
	case errors.As(err, &he) && he.Code < 500:
		return he.Code, fmt.Sprint(he.Message), true
	}
	return http.StatusInternalServerError, "", false
}

// handleError answers an error with an error page. Faults of the server
// are logged here, once, and shown without their details.
func (d *dashboard) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, message, ok := clientError(err)
	title := http.StatusText(status)
	switch {
	case !ok:
		d.cfg.Logger.Error("dashboard request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		title, message = "Something went wrong", "The monitor could not answer this request; the problem is logged. Try again in a moment."
	case status == http.StatusNotFound:
		title, message = "Page not found", "There is no page at this address."
	}
	if c.Get(sessionKey) == nil {
		c.Set(sessionKey, session{}) // errors before the session middleware ran
	}
	if err := render(c, status, errorpage.Page(d.page(c, title, ""), title, message)); err != nil {
		d.cfg.Logger.Warn("write error page", "err", err)
	}
}
