package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/templates/list"
)

// Markup a producer or a receiver may put into a webhook, one per field.
const (
	xssID      = `<script>alert("id")</script>`
	xssWebhook = `"><img src=x onerror=alert("webhookId")>`
	xssURL     = `javascript:alert("url")//<script>alert("url")</script>`
	// xssHostURL has markup in its host, which the stats page shows as
	// the receiver: xssReceiver.
	xssHostURL  = `http://<img src=x onerror=alert("host")>/x`
	xssReceiver = `http://<img src=x onerror=alert("host")>`
	// Quoted with ' as JSON text shows " escaped as \".
	xssData     = `<script>alert('data')</script>`
	xssMeta     = `'><img src=x onerror=alert('meta')>`
	xssError    = `<script>alert("error")</script>`
	xssResponse = `</pre><script>alert("response")</script>`
	xssStreamID = "1767348000000-0"
	// xssMetaShown is the meta data as the monitor stores it: the JSON
	// text of the event, markup and all.
	xssMetaShown = xssMeta
)

// liveMarkup parses a page as a browser does and returns the markup it
// would run or follow: a script other than the dashboard's own, an img,
// frame or object, an event handler attribute, a javascript: URL.
func liveMarkup(page string) []string {
	var found []string
	z := xhtml.NewTokenizer(strings.NewReader(page))
	for tt := z.Next(); tt != xhtml.ErrorToken; tt = z.Next() {
		if tt != xhtml.StartTagToken && tt != xhtml.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		switch tok.DataAtom {
		case atom.Img, atom.Iframe, atom.Object, atom.Embed, atom.Frame:
			found = append(found, tok.String())
		case atom.Script:
			if len(tok.Attr) == 0 || !strings.HasPrefix(attr(tok, "src"), "/static/") {
				found = append(found, tok.String())
			}
		}
		for _, a := range tok.Attr {
			v := strings.ToLower(strings.TrimSpace(a.Val))
			if strings.HasPrefix(a.Key, "on") || strings.HasPrefix(v, "javascript:") {
				found = append(found, tok.String())
			}
		}
	}
	return found
}

// attr is the value of a tag's attribute.
func attr(tok xhtml.Token, key string) string {
	for _, a := range tok.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// seedXSS stores an engine's failed hook with markup in every field it
// reports, and an old engine's hook whose id is markup.
func seedXSS(t *testing.T, a *testAPI) {
	t.Helper()
	ev := engineEvent(xssStreamID, 1, sendhooks.StatusFailed, 10)
	ev.WebhookID, ev.URL, ev.DeliveryError, ev.Response = xssWebhook, xssURL, xssError, xssResponse
	ev.Created = ts("2026-01-02T10:00:00Z")
	ev.MetaData = rawJSON(t, map[string]string{"note": xssMeta})
	ev.Job = string(rawJSON(t, map[string]any{"url": xssURL, "webhookId": xssWebhook, "data": map[string]string{"html": xssData}, "secretHash": "s3cret"}))
	a.seed(t, ev, oldEvent(xssID, xssHostURL, sendhooks.StatusFailed, "2026-01-02T11:00:00Z", ""))
}

// rawJSON is v as JSON with <, > and & kept as they are, as a producer
// may send them.
func rawJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b.Bytes())
}

// TestSecurityStoredXSS checks that markup stored in webhooks is data: the
// JSON API returns it JSON-escaped, and every dashboard page that shows it
// (and every page reflecting a request's markup) has it HTML-escaped, with
// no clickable javascript: URL, under the Content-Security-Policy.
func TestSecurityStoredXSS(t *testing.T) {
	a := startAPI(t, APIConfig{})
	seedXSS(t, a)
	for _, path := range []string{"/api/sendhooks/v1/hooks", "/api/sendhooks/v1/hooks/" + xssStreamID,
		"/api/sendhooks/v1/hooks/" + url.PathEscape(xssID), "/api/sendhooks/v1/hooks/" + url.PathEscape(xssWebhook), "/api/sendhooks/v1/hooks/" + url.PathEscape("<b>nope")} {
		status, header, body := a.do(t, http.MethodGet, path, nil)
		if ct := header.Get("Content-Type"); (status != http.StatusOK && status != http.StatusNotFound) || ct != "application/json" || strings.ContainsAny(body, "<>") {
			t.Errorf("GET %s: %d %s, a body with raw < or >:\n%.400s", path, status, ct, body)
		}
	}
	var h struct {
		ID, URL, ExternalID, Error string
		Attempts                   []struct{ Error, Response string }
		MetaData                   struct{ Note string }
		Job                        struct{ Data struct{ HTML string } }
	}
	a.getJSON(t, "/api/sendhooks/v1/hooks/"+xssStreamID, &h)
	if h.URL != xssURL || h.ExternalID != xssWebhook || h.Error != xssError || h.MetaData.Note != xssMeta ||
		h.Job.Data.HTML != xssData || len(h.Attempts) != 1 || h.Attempts[0].Response != xssResponse {
		t.Errorf("the API does not return the markup as the data it is: %+v", h)
	}

	d := startDashboard(t, func(_ *testDashboard, c *DashboardConfig) {
		c.Now = func() time.Time { return time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC) }
	})
	seedXSS(t, &testAPI{store: d.store})
	pages := []struct {
		path   string
		status int
		shows  []string // each shown HTML-escaped
	}{
		{"/", http.StatusOK, []string{xssID, xssWebhook, xssURL, xssError}},
		{"/partials/hooks", http.StatusOK, []string{xssID, xssWebhook, xssURL, xssError}},
		{"/hooks/" + xssStreamID, http.StatusOK, []string{xssWebhook, xssURL, xssError, xssResponse, xssMetaShown, xssData}},
		{"/partials/hooks/" + xssStreamID, http.StatusOK, []string{xssWebhook, xssURL, xssError, xssResponse}},
		{string(list.HookURL(xssID)), http.StatusOK, []string{xssID, xssHostURL}},
		{string(list.HookURL(xssWebhook)), http.StatusOK, []string{xssWebhook, xssURL}},
		// The stats page names receivers (scheme, host and port): the one
		// with markup in its host, and xssURL's, which has no host.
		{"/stats?range=24h", http.StatusOK, []string{xssReceiver, "(URL without a host)"}},
		// Markup in the request is reflected escaped too.
		{"/?search=" + url.QueryEscape(xssData), http.StatusOK, []string{xssData}},
		{"/retry-failed?search=" + url.QueryEscape(xssData), http.StatusOK, nil},
		{"/?status=" + url.QueryEscape(xssData), http.StatusBadRequest, []string{fmt.Sprintf("%q", xssData)}},
		{"/stats?range=" + url.QueryEscape(xssData), http.StatusBadRequest, []string{fmt.Sprintf("%q", xssData)}},
		{string(list.HookURL(xssData)), http.StatusNotFound, []string{xssData}},
		{"/login?next=" + url.QueryEscape("javascript:alert(1)"), http.StatusSeeOther, nil},
	}
	for _, p := range pages {
		status, header, body := d.get(t, p.path)
		if status != p.status {
			t.Errorf("%s: %d, want %d", p.path, status, p.status)
		}
		checkPageHeaders(t, p.path, header)
		if live := liveMarkup(body); len(live) > 0 {
			t.Errorf("%s holds live markup %q", p.path, live)
		}
		for _, raw := range p.shows {
			if !strings.Contains(body, html.EscapeString(raw)) {
				t.Errorf("%s does not show %s escaped (%s)", p.path, raw, html.EscapeString(raw))
			}
		}
		if loc := header.Get("Location"); strings.Contains(strings.ToLower(loc), "javascript:") {
			t.Errorf("%s redirects to %q", p.path, loc)
		}
	}
}

// checkPageHeaders checks the headers that keep a page's content inert:
// the exact Content-Security-Policy (nothing inline, no other host, no
// framing), no sniffing, no framing, no caching.
func checkPageHeaders(t *testing.T, path string, header http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Cache-Control":          "no-store",
	}
	for k, v := range want {
		if got := header.Get(k); got != v {
			t.Errorf("%s: %s %q, want %q", path, k, got, v)
		}
	}
}

// signedInDashboard starts a dashboard with credentials and a known session
// secret, with hooks to retry.
func signedInDashboard(t *testing.T, secret string) *testDashboard {
	t.Helper()
	d := startDashboard(t, func(_ *testDashboard, c *DashboardConfig) {
		c.User, c.Password, c.SessionSecret = "admin", "correct horse", []byte(secret)
	})
	seedInjection(t, &testAPI{store: d.store})
	return d
}

// newVisitor is another browser: its own cookies, no redirects followed.
func newVisitor(d *testDashboard) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: d.client.CheckRedirect}
}

// signIn signs client in and returns its session's CSRF token.
func signIn(t *testing.T, d *testDashboard, client *http.Client) string {
	t.Helper()
	if status := loginAttempt(t, d, client, "admin", "correct horse"); status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", status)
	}
	_, _, body := rawRequest(t, client, http.MethodGet, d.srv.URL+"/", nil, nil)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "Signed in as") {
		t.Fatalf("not signed in:\n%s", body)
	}
	return m[1]
}

// loginAttempt fills the login form as client and returns the status.
func loginAttempt(t *testing.T, d *testDashboard, client *http.Client, user, password string) int {
	t.Helper()
	_, _, body := rawRequest(t, client, http.MethodGet, d.srv.URL+"/login", nil, nil)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the login form:\n%s", body)
	}
	form := url.Values{"csrf": {m[1]}, "user": {user}, "password": {password}}
	status, _, _ := rawRequest(t, client, http.MethodPost, d.srv.URL+"/login", formHeader, strings.NewReader(form.Encode()))
	return status
}

// signedIn says whether client's session is signed in.
func signedIn(t *testing.T, d *testDashboard, client *http.Client) bool {
	t.Helper()
	status, _, _ := rawRequest(t, client, http.MethodGet, d.srv.URL+"/", nil, nil)
	return status == http.StatusOK
}

// TestSecurityCSRF posts to every dashboard POST route without a token,
// with a wrong one and with another session's, as a form field and as the
// htmx header: each is refused with 403, no job is queued, the session
// stays as it was, and the same post with the right token works.
func TestSecurityCSRF(t *testing.T) {
	d := signedInDashboard(t, strings.Repeat("k", 32))
	victim, other, anonymous := newVisitor(d), newVisitor(d), newVisitor(d)
	token := signIn(t, d, victim)
	otherToken := signIn(t, d, other)
	const refusal = "The form expired or did not come from this dashboard."

	routes := []struct {
		path string
		form url.Values
	}{
		{"/hooks/" + literalHookID + "/retry", url.Values{}},
		{"/retry-failed", url.Values{"search": {"new.example"}}},
		{"/logout", url.Values{}},
		{"/login", url.Values{"user": {"admin"}, "password": {"correct horse"}}},
	}
	tokens := map[string]string{"no token": "", "a wrong token": "forged", "another session's token": otherToken,
		"a token with a suffix": token + "x", "a truncated token": token[:len(token)-1]}
	for _, r := range routes {
		client := victim
		if r.path == "/login" {
			client = anonymous
		}
		for name, tok := range tokens {
			for _, asHeader := range []bool{false, true} {
				form, header := url.Values{}, formHeader.Clone()
				for k, v := range r.form {
					form[k] = v
				}
				if asHeader {
					header.Set(csrfHeader, tok)
				} else if tok != "" {
					form.Set(csrfField, tok)
				}
				status, _, body := rawRequest(t, client, http.MethodPost, d.srv.URL+r.path, header, strings.NewReader(form.Encode()))
				if status != http.StatusForbidden || !strings.Contains(body, html.EscapeString(refusal)) {
					t.Errorf("POST %s with %s (header %v): %d, want 403", r.path, name, asHeader, status)
				}
			}
		}
	}
	if n := queuedJobs(t, d.rdb); n != 0 {
		t.Fatalf("refused posts queued %d jobs", n)
	}
	if !signedIn(t, d, victim) || signedIn(t, d, anonymous) {
		t.Fatal("a refused logout signed the victim out, or a refused login signed a visitor in")
	}

	// The right token works, so the refusals above were the token's doing.
	form := url.Values{csrfField: {token}}
	if status, _, _ := rawRequest(t, victim, http.MethodPost, d.srv.URL+routes[0].path, formHeader, strings.NewReader(form.Encode())); status != http.StatusSeeOther {
		t.Fatalf("retry with the session's token: %d, want 303", status)
	}
	if n := queuedJobs(t, d.rdb); n != 1 {
		t.Fatalf("%d jobs queued by the retry, want 1", n)
	}
}

// sessionCookie is a session cookie value for payload, signed as the
// dashboard signs with secret.
func sessionCookie(secret, payload string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("session\x00" + payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestSecurityDashboardAuthBypass reaches for every page without signing
// in: plainly, through path tricks, with forged and tampered session
// cookies, and with wrong passwords until the throttle refuses even the
// right one. Only the static assets are served.
func TestSecurityDashboardAuthBypass(t *testing.T) {
	secret := strings.Repeat("k", 32)
	d := signedInDashboard(t, secret)
	future := time.Now().Add(time.Hour).Unix()
	admin := fmt.Sprintf(`{"i":"forged","u":"admin","e":%d}`, future)

	// A cookie the test signs with the dashboard's secret is accepted, so
	// the forgeries below fail for their flaw alone.
	if status, _, _ := getWithCookie(t, d, "/", sessionCookie(secret, admin)); status != http.StatusOK {
		t.Fatalf("a well-signed session: %d, want 200", status)
	}
	_, header, _ := d.get(t, "/login")
	anonymousCookie := strings.TrimPrefix(strings.Split(header.Get("Set-Cookie"), ";")[0], "sendhooks_session=")
	payload, sig, _ := strings.Cut(anonymousCookie, ".")
	cookies := map[string]string{
		"none":                           "",
		"anonymous":                      anonymousCookie,
		"signed with another secret":     sessionCookie(strings.Repeat("x", 32), admin),
		"expired":                        sessionCookie(secret, fmt.Sprintf(`{"i":"forged","u":"admin","e":%d}`, time.Now().Add(-time.Second).Unix())),
		"without an id":                  sessionCookie(secret, fmt.Sprintf(`{"u":"admin","e":%d}`, future)),
		"not JSON":                       sessionCookie(secret, "admin"),
		"payload changed, old signature": base64.RawURLEncoding.EncodeToString([]byte(admin)) + "." + sig,
		"payload with a user appended":   payload + base64.RawURLEncoding.EncodeToString([]byte(`,"u":"admin"}`)) + "." + sig,
		"no signature":                   base64.RawURLEncoding.EncodeToString([]byte(admin)) + ".",
		"no dot":                         base64.RawURLEncoding.EncodeToString([]byte(admin)),
		"the CSRF token as signature":    base64.RawURLEncoding.EncodeToString([]byte(admin)) + "." + d.csrf(t, "/login"),
	}
	pages := []string{"/", "/?status=failed", "/partials/hooks", "/hooks/" + literalHookID, "/partials/hooks/" + literalHookID,
		"/stats", "/retry-failed", "/nowhere", "//hooks/" + literalHookID, "/hooks/../stats", "/%2e%2e/stats", "/STATS"}
	for name, ck := range cookies {
		for _, p := range pages {
			status, header, body := getWithCookie(t, d, p, ck)
			if status != http.StatusSeeOther || !strings.HasPrefix(header.Get("Location"), "/login?next=") || strings.Contains(body, literalHookID) {
				t.Errorf("GET %s with cookie %s: %d to %q, want 303 to the login form", p, name, status, header.Get("Location"))
			}
		}
	}
	// The static assets are public, and they cannot be used to reach a page.
	for p, want := range map[string]int{"/static/app.css": 200, "/static/../stats": 404, "/static/%2e%2e/stats": 404, "/static/vendor/../../stats": 404} {
		status, _, body := getWithCookie(t, d, p, "")
		if status != want || strings.Contains(body, literalHookID) {
			t.Errorf("GET %s: %d, want %d", p, status, want)
		}
	}

	checkLoginRefusals(t, d)
}

// getWithCookie GETs path as a new visitor carrying only the session cookie
// value ck ("" for none).
func getWithCookie(t *testing.T, d *testDashboard, path, ck string) (int, http.Header, string) {
	t.Helper()
	h := http.Header{}
	if ck != "" {
		h.Set("Cookie", "sendhooks_session="+ck)
	}
	return rawRequest(t, newVisitor(d), http.MethodGet, d.srv.URL+path, h, nil)
}

// checkLoginRefusals signs in with near misses (401 each), then fails until
// the throttle holds: even the right password from another visitor is
// refused with 429.
func checkLoginRefusals(t *testing.T, d *testDashboard) {
	t.Helper()
	misses := [][2]string{{"admin", "correct horse "}, {"admin", "Correct horse"}, {"Admin", "correct horse"}, {"admin ", "correct horse"},
		{"admin", ""}, {"", "correct horse"}, {"admin", "correct"}, {"admin\x00", "correct horse"}, {"admin", "correct horse\x00"}, {"admin", "*"}}
	for i, m := range misses {
		client := newVisitor(d)
		if status := loginAttempt(t, d, client, m[0], m[1]); status != http.StatusUnauthorized || signedIn(t, d, client) {
			t.Errorf("sign-in %d as %q/%q: %d, want 401 and no session", i, m[0], m[1], status)
		}
	}
	if len(misses) < maxFailedLogins {
		t.Fatalf("%d misses do not reach the throttle (%d)", len(misses), maxFailedLogins)
	}
	client := newVisitor(d)
	if status := loginAttempt(t, d, client, "admin", "correct horse"); status != http.StatusTooManyRequests || signedIn(t, d, client) {
		t.Fatalf("the right password after %d failures: %d, want 429", len(misses), status)
	}
}
