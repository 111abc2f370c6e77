package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sendhooks/sendhooks/templates/login"
)

// sessionTTL is how long a session lasts.
const sessionTTL = 12 * time.Hour

// sessionKey is where the request's session is kept in the echo context.
const sessionKey = "dashboard.session"

// csrfField and csrfHeader carry the CSRF token of a POST: forms send the
// field, htmx the header.
const (
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// session is the state a signed cookie carries. Every visitor gets one (its
// ID keys the CSRF token); User is set once signed in.
type session struct {
	ID      string `json:"i"`
	User    string `json:"u,omitempty"`
	Expires int64  `json:"e"`
}

// sessions issues and checks the session cookies.
type sessions struct {
	throttle *loginThrottle

	user, password [sha256.Size]byte
	required       bool
	secret         []byte
	secure         bool
	cookie         string
	now            func() time.Time
}

func newSessions(cfg DashboardConfig) *sessions {
	s := &sessions{
		required: cfg.User != "" && cfg.Password != "",
		user:     sha256.Sum256([]byte(cfg.User)),
		password: sha256.Sum256([]byte(cfg.Password)),
		secret:   cfg.SessionSecret,
		secure:   cfg.Secure,
		cookie:   "sendhooks_session",
		now:      cfg.Now,
		throttle: newLoginThrottle(cfg.Now),
	}
	if cfg.Secure {
		s.cookie = "__Host-sendhooks_session" // bound to this host, HTTPS, path /
	}
	return s
}

// enabled says whether pages need a signed-in session.
func (s *sessions) enabled() bool { return s.required }

// check compares credentials in constant time and counts a failure
// against client (see clientOf).
func (s *sessions) check(client, user, password string) bool {
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	ok := subtle.ConstantTimeCompare(u[:], s.user[:])&subtle.ConstantTimeCompare(p[:], s.password[:]) == 1
	if !ok {
		s.throttle.fail(client)
	}
	return ok
}

// mac signs a message with the session secret under a purpose.
func (s *sessions) mac(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}

// csrfToken is the CSRF token of a session.
func (s *sessions) csrfToken(sess session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", []byte(sess.ID)))
}

// validCSRF checks the token a POST carries.
func (s *sessions) validCSRF(c echo.Context, sess session) bool {
	got := c.Request().Header.Get(csrfHeader)
	if got == "" {
		got = c.FormValue(csrfField)
	}
	want := s.csrfToken(sess)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// fresh is a new session of user, with a new ID.
func (s *sessions) fresh(user string) session {
	id := make([]byte, 18)
	rand.Read(id) // never fails (crypto/rand)
	return session{ID: base64.RawURLEncoding.EncodeToString(id), User: user, Expires: s.now().Add(sessionTTL).Unix()}
}

// read returns the request's session when its cookie is valid.
func (s *sessions) read(r *http.Request) (session, bool) {
	ck, err := r.Cookie(s.cookie)
	if err != nil {
		return session{}, false
	}
	payload, sig, ok := strings.Cut(ck.Value, ".")
	if !ok {
		return session{}, false
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(payload)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.mac("session", raw)) {
		return session{}, false
	}
	var sess session
	if json.Unmarshal(raw, &sess) != nil || sess.ID == "" || s.now().Unix() >= sess.Expires {
		return session{}, false
	}
	return sess, true
}

// write sets the session's cookie: HttpOnly, SameSite=Lax, Secure when
// configured.
func (s *sessions) write(c echo.Context, sess session) {
	raw, _ := json.Marshal(sess) // a struct of strings and an int
	c.SetCookie(&http.Cookie{
		Name:     s.cookie,
		Value:    base64.RawURLEncoding.EncodeToString(raw) + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", raw)),
		Path:     "/",
		Expires:  time.Unix(sess.Expires, 0),
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// middleware gives every request a session, checks the CSRF token of
// every POST, and, when credentials are configured, sends visitors who
// are not signed in to the login form.
func (s *sessions) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, ok := s.read(c.Request())
		if !ok {
			sess = s.fresh("")
			s.write(c, sess)
		}
		c.Set(sessionKey, sess)
		if c.Request().Method == http.MethodPost && !s.validCSRF(c, sess) {
			return &statusError{http.StatusForbidden, apiError{Code: "CSRF",
				Description: "The form expired or did not come from this dashboard. Go back, reload the page and try again."}}
		}
		if s.enabled() && sess.User == "" && c.Path() != "/login" {
			return s.toLogin(c)
		}
		return next(c)
	}
}

// toLogin sends a visitor who is not signed in to the login form, and back
// here afterwards.
func (s *sessions) toLogin(c echo.Context) error {
	next := c.Request().URL.RequestURI()
	if c.Request().Method != http.MethodGet || strings.HasPrefix(next, "/partials/") {
		next = "/"
	}
	target := "/login?next=" + url.QueryEscape(next)
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", target)
		return c.NoContent(http.StatusUnauthorized)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// sessionOf is the request's session.
func sessionOf(c echo.Context) session {
	sess, _ := c.Get(sessionKey).(session)
	return sess
}

// safeNext is where to go after signing in: a path on this site, else /.
//
// It judges next as a browser will read it, since that is where the
// browser goes: the WHATWG URL parser drops every ASCII tab, CR and LF and
// reads a backslash as a slash, so "/\t/evil.example" and "/\\evil.example"
// both lead to //evil.example, another host. What it returns has the tabs
// and line breaks dropped, so the Location header says what the browser
// will do.
func safeNext(next string) string {
	next = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, next)
	asBrowser := strings.ReplaceAll(next, "\\", "/")
	if !strings.HasPrefix(asBrowser, "/") || strings.HasPrefix(asBrowser, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	u, err := url.Parse(asBrowser)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return next
}

// loginForm answers GET /login.
func (d *dashboard) loginForm(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	if !d.auth.enabled() || sessionOf(c).User != "" {
		return c.Redirect(http.StatusSeeOther, next)
	}
	return render(c, http.StatusOK, login.Page(d.page(c, "Sign in", ""), login.Data{Next: next}))
}

// login answers POST /login: right credentials start a new session (a new
// ID, so one planted before cannot be taken over).
func (d *dashboard) login(c echo.Context) error {
	next := safeNext(c.FormValue("next"))
	if !d.auth.enabled() {
		return c.Redirect(http.StatusSeeOther, next)
	}
	user := c.FormValue("user")
	client := clientOf(c.Request())
	if d.auth.throttle.throttled(client) {
		return render(c, http.StatusTooManyRequests, login.Page(d.page(c, "Sign in", ""),
			login.Data{User: user, Next: next, Problem: "Too many failed sign-ins; wait a minute and try again."}))
	}
	if !d.auth.check(client, user, c.FormValue("password")) {
		return render(c, http.StatusUnauthorized, login.Page(d.page(c, "Sign in", ""),
			login.Data{User: user, Next: next, Problem: "Wrong user or password."}))
	}
	sess := d.auth.fresh(user)
	d.auth.write(c, sess)
	return c.Redirect(http.StatusSeeOther, next)
}

// logout answers POST /logout: the session is replaced by an anonymous one.
func (d *dashboard) logout(c echo.Context) error {
	d.auth.write(c, d.auth.fresh(""))
	return c.Redirect(http.StatusSeeOther, "/login")
}
