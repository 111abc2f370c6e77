package web

import (
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/rs/cors"
)

// RequestHeader is the header that a request changing state without a
// body (a retry) carries instead of a JSON Content-Type, as in
// "Sendhooks-Request: 1": an HTML form can send neither, and a script of
// another site cannot send them without a CORS preflight, which only the
// origins of ALLOWED_ORIGINS pass.
const RequestHeader = "Sendhooks-Request"

// originPolicy says which browser origins may change state: the API's own
// and those ALLOWED_ORIGINS allows.
type originPolicy struct {
	anyOrigin bool // ALLOWED_ORIGINS holds "*"
	// named matches the origins ALLOWED_ORIGINS names, with rs/cors's
	// wildcards ("https://*.example.com"); nil when it names none.
	named *cors.Cors
}

func newOriginPolicy(allowed []string) originPolicy {
	p := originPolicy{anyOrigin: slices.Contains(allowed, "*")}
	names := slices.DeleteFunc(slices.Clone(allowed), func(o string) bool { return o == "*" || o == "" })
	if len(names) > 0 { // rs/cors allows every origin when given none
		p.named = cors.New(cors.Options{AllowedOrigins: names})
	}
	return p
}

// refusal says why r, a request that changes state, may have been sent by
// a page of another site, or "" when it cannot have been. Browsers mark
// such requests with Sec-Fetch-Site and Origin; one sent by an HTML form
// or a CORS "simple" request, which need no preflight, can have no JSON
// Content-Type and no custom header.
func (p originPolicy) refusal(r *http.Request) string {
	origin := r.Header.Get("Origin")
	named := origin != "" && p.named != nil && p.named.OriginAllowed(r)
	// "*" lets every origin read the API; changing state from another
	// site takes an origin named in ALLOWED_ORIGINS.
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" && !named {
		return fmt.Sprintf("the browser says a page of another site sent it (Sec-Fetch-Site: cross-site, Origin %q), and ALLOWED_ORIGINS does not name that origin", origin)
	}
	if origin != "" && !named && !p.anyOrigin && !sameOrigin(origin, r.Host) {
		return fmt.Sprintf("it comes from the origin %q, which is neither the API's own nor allowed by ALLOWED_ORIGINS", origin)
	}
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, _ := mime.ParseMediaType(ct)
	isJSON := mt == echo.MIMEApplicationJSON
	switch {
	case r.ContentLength != 0 && !isJSON: // -1: a body of unknown length
		return fmt.Sprintf("a request with a body must be JSON (Content-Type: application/json), which an HTML form cannot send; got Content-Type %q", ct)
	case r.ContentLength == 0 && !isJSON && r.Header.Get(RequestHeader) == "":
		return "a request without a body must carry the header " + RequestHeader + ": 1 (or Content-Type: application/json), which an HTML form cannot send"
	}
	return ""
}

// sameOrigin says whether a browser's Origin names the host the request
// was sent to. The scheme is not compared: behind a proxy that ends TLS
// the API sees http for an https page.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(withoutDefaultPort(u.Host, u.Scheme), withoutDefaultPort(host, u.Scheme))
}

// withoutDefaultPort drops the scheme's default port from host:port.
func withoutDefaultPort(hostport, scheme string) string {
	_, port, err := net.SplitHostPort(hostport)
	if err == nil && ((scheme == "http" && port == "80") || (scheme == "https" && port == "443")) {
		return strings.TrimSuffix(hostport, ":"+port)
	}
	return hostport
}

// changesState says whether a request's method may change state.
func changesState(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// crossSiteError is the 403 answer to a request refused by refusal.
func crossSiteError(reason string) *statusError {
	return &statusError{http.StatusForbidden, apiError{Code: "CROSS_SITE_REQUEST", Description: "refused: " + reason}}
}

// refuseCrossSite refuses the API's state-changing requests that a page
// of another site may have sent, whether or not the API needs a token.
func (a *api) refuseCrossSite(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r := c.Request(); changesState(r.Method) {
			if reason := a.origins.refusal(r); reason != "" {
				return crossSiteError(reason)
			}
		}
		return next(c)
	}
}

// RefuseCrossSite wraps next so that its state-changing requests that a
// page of another site may have sent are refused as the API refuses them:
// 403 {"code":"CROSS_SITE_REQUEST",…}. allowedOrigins are read as
// ALLOWED_ORIGINS. The dev stack guards its demo routes with it.
func RefuseCrossSite(next http.Handler, allowedOrigins []string) http.Handler {
	p := newOriginPolicy(allowedOrigins)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if changesState(r.Method) {
			if reason := p.refusal(r); reason != "" {
				e := crossSiteError(reason)
				w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
				w.WriteHeader(e.status)
				_ = json.NewEncoder(w).Encode(e.apiError)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
