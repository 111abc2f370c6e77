package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// offSite are sign-in targets that lead a browser to another host: the
// forms browsers repair (tabs and line breaks dropped, \ read as /) and
// plain absolute URLs.
var offSite = []string{
	"/\t/evil.example",
	"/\t/evil.example/path?x=1",
	"/\r\n/evil.example",
	"/\n/evil.example",
	"\t//evil.example",
	"/\\evil.example",
	"\\/evil.example",
	"\\\\evil.example",
	"/\t\\evil.example",
	"//evil.example",
	"///evil.example",
	"//user:pass@evil.example",
	"http://evil.example/",
	"https:evil.example",
	"HTTP://evil.example",
	"javascript:alert(1)",
	" //evil.example",
	"evil.example",
	"",
}

// onSite are targets on this site, returned as a browser reads them.
var onSite = map[string]string{
	"/":                             "/",
	"/hooks/abc":                    "/hooks/abc",
	"/?status=failed&search=a%2Fb":  "/?status=failed&search=a%2Fb",
	"/stats?range=24h#top":          "/stats?range=24h#top",
	"/%2F%2Fevil.example":           "/%2F%2Fevil.example",
	"/hooks/a\tb":                   "/hooks/ab",
	"/search?q=//evil.example":      "/search?q=//evil.example",
	"/hooks/x?next=http://evil.exa": "/hooks/x?next=http://evil.exa",
}

func TestSafeNext(t *testing.T) {
	for _, next := range offSite {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", next, got)
		}
	}
	for next, want := range onSite {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// asBrowserReads is a relative URL as a browser's URL parser reads it
// (WHATWG URL spec): leading and trailing C0 controls and spaces dropped,
// every ASCII tab, CR and LF dropped, and \ read as /.
func asBrowserReads(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= 0x20 })
	s = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(s)
	return strings.ReplaceAll(s, "\\", "/")
}

// FuzzSafeNext checks that whatever safeNext lets through, resolved by a
// browser on the monitor's page, stays on the monitor's host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range offSite {
		f.Add(s)
	}
	for s := range onSite {
		f.Add(s)
	}
	base, err := url.Parse("http://monitor.local/")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "/" {
			return
		}
		ref, err := url.Parse(asBrowserReads(got))
		if err != nil {
			t.Fatalf("safeNext(%q) = %q, which does not parse: %v", next, got, err)
		}
		if u := base.ResolveReference(ref); u.Scheme != "http" || u.Host != "monitor.local" || u.User != nil {
			t.Fatalf("safeNext(%q) = %q, which a browser takes to %s", next, got, u)
		}
	})
}

// TestSecurityLoginOpenRedirect asks the login form to send the visitor
// off site afterwards: at once when no login is configured, and after a
// sign-in when one is. Every such target becomes /; a target on this site
// is kept.
func TestSecurityLoginOpenRedirect(t *testing.T) {
	open := startDashboard(t, nil)
	d := signedInDashboard(t, strings.Repeat("k", 32))
	for _, next := range offSite {
		status, header, _ := open.get(t, "/login?next="+url.QueryEscape(next))
		if loc := header.Get("Location"); status != http.StatusSeeOther || loc != "/" {
			t.Errorf("open dashboard, GET /login?next=%q: %d to %q, want 303 to /", next, status, loc)
		}

		visitor := newVisitor(d)
		_, _, body := rawRequest(t, visitor, http.MethodGet, d.srv.URL+"/login?next="+url.QueryEscape(next), nil, nil)
		m := csrfInput.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no CSRF token on the login form:\n%s", body)
		}
		form := url.Values{"csrf": {m[1]}, "user": {"admin"}, "password": {"correct horse"}, "next": {next}}
		status, header, _ = rawRequest(t, visitor, http.MethodPost, d.srv.URL+"/login", formHeader, strings.NewReader(form.Encode()))
		if loc := header.Get("Location"); status != http.StatusSeeOther || loc != "/" {
			t.Errorf("sign-in with next=%q: %d to %q, want 303 to /", next, status, loc)
		}
	}
	const kept = "/hooks/" + literalHookID + "?tab=attempts"
	if status, header, _ := open.get(t, "/login?next="+url.QueryEscape(kept)); status != http.StatusSeeOther || header.Get("Location") != kept {
		t.Errorf("GET /login?next=%s: %d to %q, want 303 there", kept, status, header.Get("Location"))
	}
}
