package monitor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sendhooks/sendhooks"
)

// Filter selects hooks. Zero fields select everything.
type Filter struct {
	// Statuses keeps the hooks whose status is one of these.
	Statuses []sendhooks.Status
	// CreatedFrom and CreatedTo bound created (both inclusive).
	CreatedFrom, CreatedTo time.Time
	// DeliveredFrom and DeliveredTo bound delivered (both inclusive).
	DeliveredFrom, DeliveredTo time.Time
	// Search is plain text, never a pattern. When it is exactly the id,
	// producer webhookId or messageId of some hooks, it selects those
	// (a point lookup over all history); otherwise it selects the hooks
	// whose webhookId or url contains it, ignoring the case of ASCII
	// letters, among the newest SearchWindow hooks the other fields select.
	Search string
}

// Validate checks the bounds a store relies on.
func (f Filter) Validate() error {
	if n := utf8.RuneCountInString(f.Search); n > MaxSearchLength {
		return fmt.Errorf("search is %d characters long; at most %d are allowed", n, MaxSearchLength)
	}
	return nil
}

// ListQuery asks for one page of the hooks a filter selects, newest
// created first (ties by id, highest first).
type ListQuery struct {
	Filter
	// Limit is the page size, from 1 to MaxLimit.
	Limit int
	// Offset skips that many hooks (the old API's page and limit); it is
	// ignored when Older or Newer is set.
	Offset int
	// Older asks for the hooks after this position in the list (older
	// ones); Newer for the hooks just before it (newer ones), still
	// returned newest first. At most one is set.
	Older, Newer *Cursor
	// NoTotal skips the count, for callers that do not show it.
	NoTotal bool
}

// Validate checks the query's bounds.
func (q ListQuery) Validate() error {
	switch {
	case q.Limit < 1 || q.Limit > MaxLimit:
		return fmt.Errorf("limit must be from 1 to %d, got %d", MaxLimit, q.Limit)
	case q.Offset < 0 || q.Offset > MaxOffset:
		return fmt.Errorf("offset must be from 0 to %d, got %d", MaxOffset, q.Offset)
	case q.Older != nil && q.Newer != nil:
		return errors.New("older and newer cannot both be given")
	}
	return q.Filter.Validate()
}

// Page is one page of a list.
type Page struct {
	Hooks []Hook
	// Total is the number of hooks the filter selects. When TotalAtLeast
	// is set the count stopped at a bound (the search window, or the cap
	// on exact matches) and at least Total hooks match.
	Total        int64
	TotalAtLeast bool
	// Partial says a substring search reached its window before it filled
	// the page: older hooks may match too, and Older goes on from there.
	Partial bool
	// Older and Newer are the positions of the neighbouring pages; nil
	// where the list ends (Newer is set whenever the page did not start
	// at the newest hook).
	Older, Newer *Cursor
}

// Cursor is a position in the list: the created time and id of a hook.
type Cursor struct {
	Created time.Time
	ID      string
}

// CursorOf is the position of h.
func CursorOf(h Hook) *Cursor {
	c := &Cursor{ID: h.ID}
	if h.Created != nil {
		c.Created = *h.Created
	}
	return c
}

// String encodes the cursor for a URL: the created time in Unix
// milliseconds, a dot, and the id in unpadded base64url.
func (c Cursor) String() string {
	return strconv.FormatInt(c.Created.UnixMilli(), 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(c.ID))
}

// ParseCursor reads a cursor written by String.
func ParseCursor(s string) (*Cursor, error) {
	ms, id, ok := strings.Cut(s, ".")
	if !ok {
		return nil, fmt.Errorf("cursor %q is not of the form <milliseconds>.<id>", s)
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("cursor %q: %q is not a whole number of milliseconds", s, ms)
	}
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || !utf8.Valid(b) {
		return nil, fmt.Errorf("cursor %q: the id is not base64url text", s)
	}
	return &Cursor{Created: time.UnixMilli(n).UTC(), ID: string(b)}, nil
}

// Before reports whether a hook at (created, id) comes after c in the
// list, that is, is older.
func (c Cursor) Before(created time.Time, id string) bool {
	if !created.Equal(c.Created) {
		return created.Before(c.Created)
	}
	return id < c.ID
}

// MatchesFields reports whether h passes the filter's statuses and time
// ranges; Search is left to ExactMatch and SubstringMatch, since which of
// the two applies depends on the other hooks.
func (f Filter) MatchesFields(h Hook) bool {
	if len(f.Statuses) > 0 && !containsStatus(f.Statuses, h.Status) {
		return false
	}
	return inRange(h.Created, f.CreatedFrom, f.CreatedTo) && inRange(h.Delivered, f.DeliveredFrom, f.DeliveredTo)
}

// ExactMatch reports whether the search is h's id, webhookId or messageId.
func (f Filter) ExactMatch(h Hook) bool {
	return f.Search == h.ID || f.Search == h.ExternalID || f.Search == h.MessageID
}

// SubstringMatch reports whether h's webhookId or url contains the
// search, ignoring the case of ASCII letters.
func (f Filter) SubstringMatch(h Hook) bool {
	s := FoldASCII(f.Search)
	return strings.Contains(FoldASCII(h.ExternalID), s) || strings.Contains(FoldASCII(h.URL), s)
}

// FoldASCII lowers the ASCII letters of s and leaves every other
// character alone, as SQLite's LIKE and lower() do.
func FoldASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func containsStatus(list []sendhooks.Status, s sendhooks.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func inRange(t *time.Time, from, to time.Time) bool {
	if from.IsZero() && to.IsZero() {
		return true
	}
	if t == nil {
		return false
	}
	return !t.Before(from) && (to.IsZero() || !t.After(to))
}

// Collect returns up to n hooks that f selects, newest first, reading the
// store a page at a time (for bulk retries, which act on more hooks than
// one page holds).
//
// A filter that the search window serves (a substring search, a delivered
// range) reads up to SearchWindow index entries per page. Collect stops at
// the first page that reaches its window's end before it fills, and
// reports partial: older hooks may match too, and were not looked at.
// Otherwise a search that matches few hooks would read every hook the
// other filters select, a window at a time. So one call reads at most one
// window per MaxLimit hooks asked for.
func Collect(ctx context.Context, s Store, f Filter, n int) (hooks []Hook, partial bool, err error) {
	q := ListQuery{Filter: f, NoTotal: true}
	for len(hooks) < n {
		q.Limit = min(MaxLimit, n-len(hooks))
		p, err := s.List(ctx, q)
		if err != nil {
			return nil, false, err
		}
		hooks = append(hooks, p.Hooks...)
		if p.Partial {
			return hooks, true, nil
		}
		if p.Older == nil {
			break
		}
		q.Older = p.Older
	}
	return hooks, false, nil
}
