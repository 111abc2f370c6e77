package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestOldDashboardLinks follows the old dashboard's links and bookmarks:
// its list at /hooks (with or without a slash, with its filters and page
// in the query) redirects to this list with the same query, and its
// detail at /hooks/<id> (with or without a slash) shows that webhook. The
// redirects stay on this site whatever the query holds.
func TestOldDashboardLinks(t *testing.T) {
	d := startDashboard(t, nil)
	seedDashboard(t, d)
	base, err := url.Parse(d.srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	redirects := []struct{ path, location string }{
		{"/hooks", "/"},
		{"/hooks/", "/"},
		{"/hooks?", "/"},
		{"/hooks?status=failed", "/?status=failed"},
		// The old dashboard's pages held 10 webhooks: its page keeps them.
		{"/hooks/?status=failed&page=1", "/?status=failed&page=1&limit=10"},
		{"/hooks?createdStartDate=2026-01-02+10%3A01%3A00&createdEndDate=2026-01-02+10%3A03%3A00&page=1",
			"/?createdStartDate=2026-01-02+10%3A01%3A00&createdEndDate=2026-01-02+10%3A03%3A00&page=1&limit=10"},
		{"/hooks?page=2&limit=5", "/?page=2&limit=5"},
		{"/hooks?page=&search=old", "/?page=&search=old"},
		// Whatever the query says, the target is this site's root.
		{"/hooks?next=https://evil.example", "/?next=https://evil.example"},
		{"/hooks?//evil.example", "/?//evil.example"},
		{"/hooks/?/%2F%2Fevil.example", "/?/%2F%2Fevil.example"},
		{"/hooks?\\evil.example", "/?\\evil.example"},
		{"/hooks?@evil.example", "/?@evil.example"},
	}
	for _, r := range redirects {
		status, header, _ := d.get(t, r.path)
		loc := header.Get("Location")
		if status != http.StatusMovedPermanently || loc != r.location {
			t.Errorf("GET %s: %d to %q, want 301 to %q", r.path, status, loc, r.location)
			continue
		}
		u, err := url.Parse(asBrowserReads(loc))
		if err != nil {
			t.Fatalf("GET %s: Location %q: %v", r.path, loc, err)
		}
		if to := base.ResolveReference(u); to.Host != base.Host || to.Path != "/" {
			t.Errorf("GET %s: a browser goes to %s, want %s/", r.path, to, base)
		}
	}

	// The redirected lists show what the old dashboard showed.
	lists := []struct {
		path string
		ids  []string
	}{
		{"/hooks?status=failed&page=1", []string{"1767348000040-0", "1767348000020-0", "1767348000000-0", "old-1"}},
		{"/hooks/?createdStartDate=2026-01-02+10%3A01%3A00&createdEndDate=2026-01-02+10%3A03%3A00",
			[]string{"1767348000030-0", "1767348000020-0", "1767348000010-0"}},
		{"/hooks?search=old&_=1716544800000", []string{"old-1"}},
	}
	for _, l := range lists {
		_, header, _ := d.get(t, l.path)
		status, _, body := d.get(t, header.Get("Location"))
		if got := rowIDs(body); status != http.StatusOK || !slices.Equal(got, l.ids) {
			t.Errorf("%s, redirected to %s: %d, rows %v, want %v", l.path, header.Get("Location"), status, got, l.ids)
		}
	}
	// The date inputs show the old link's dates as days, which a browser
	// keeps when the filter form is sent again.
	status, _, body := d.get(t, "/?createdStartDate=2026-01-02+10%3A01%3A00&createdEndDate=1767348180000")
	for _, input := range []string{`name="createdStartDate" value="2026-01-02"`, `name="createdEndDate" value="2026-01-02"`, `name="deliveredStartDate" value=""`} {
		if !strings.Contains(body, input) {
			t.Errorf("the list's date inputs: want %s\n%.2000s", input, body)
		}
	}

	// The detail pages, by the id the old dashboard linked and by the
	// producer's id, with or without a trailing slash.
	details := []struct{ path, id string }{
		{"/hooks/1767348000000-0", "1767348000000-0"},
		{"/hooks/1767348000000-0/", "1767348000000-0"},
		{"/hooks/wh-1767348000010-0/", "1767348000010-0"},
		{"/hooks/old-1/", "old-1"},
	}
	for _, dt := range details {
		status, _, body := d.get(t, dt.path)
		if status != http.StatusOK || !strings.Contains(body, "<title>Webhook "+dt.id) {
			t.Errorf("GET %s: %d, want the page of %s\n%.500s", dt.path, status, dt.id, body)
		}
	}
	status, _, body = d.get(t, "/hooks/664f1a2b3c4d5e6f7a8b9c0d/")
	if status != http.StatusNotFound || !strings.Contains(body, "Webhook not found") || !strings.Contains(body, "664f1a2b3c4d5e6f7a8b9c0d") {
		t.Errorf("an unknown old id: %d\n%.500s", status, body)
	}

	// The list reads page and limit as the API does: page=0 is 1 and
	// limit=500 is 100, which its links then carry.
	status, _, body = d.get(t, "/?page=0&limit=500&_=1")
	if status != http.StatusOK || len(rowIDs(body)) != 6 || !strings.Contains(body, `name="limit" value="100"`) {
		t.Errorf("/?page=0&limit=500: %d, rows %v\n%.500s", status, rowIDs(body), body)
	}
}

// TestOldDashboardLinksSignedIn follows an old bookmark on a dashboard
// with credentials: the login form first, then the bookmark, then the list.
func TestOldDashboardLinksSignedIn(t *testing.T) {
	d := signedInDashboard(t, strings.Repeat("s", 32))
	visitor := newVisitor(d)
	bookmark := "/hooks/?status=failed&page=1"
	status, header, _ := rawRequest(t, visitor, http.MethodGet, d.srv.URL+bookmark, nil, nil)
	if want := "/login?next=" + url.QueryEscape("/hooks?status=failed&page=1"); status != http.StatusSeeOther || header.Get("Location") != want {
		t.Fatalf("bookmark before sign-in: %d to %q, want 303 to %q", status, header.Get("Location"), want)
	}
	signIn(t, d, visitor)
	status, header, _ = rawRequest(t, visitor, http.MethodGet, d.srv.URL+bookmark, nil, nil)
	if status != http.StatusMovedPermanently || header.Get("Location") != "/?status=failed&page=1&limit=10" {
		t.Fatalf("bookmark after sign-in: %d to %q", status, header.Get("Location"))
	}
	status, _, body := rawRequest(t, visitor, http.MethodGet, d.srv.URL+header.Get("Location"), nil, nil)
	if got := rowIDs(body); status != http.StatusOK || len(got) != injectionHooks {
		t.Fatalf("the list: %d, rows %v", status, got)
	}
}
