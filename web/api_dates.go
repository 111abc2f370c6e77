package web

import (
	"strconv"
	"strings"
	"time"
)

// dateForms names the forms parseDate reads, for error messages.
const dateForms = "a date (2024-05-24), a time (2024-05-24T10:00:00Z, 2024-05-24 10:00:00, " +
	"Fri, 24 May 2024 10:00:00 GMT) or Unix milliseconds (1716544800000)"

// maxUnixMilli is the last millisecond of the year 9999, the largest
// whole number parseDate reads as Unix milliseconds.
const maxUnixMilli = 253402300799999

// Layouts of a date and time without a zone, after a space between the
// two was made a T: read as UTC.
var zonelessLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04"}

// Layouts of the HTTP date (RFC 1123, what JavaScript's toUTCString
// writes) and of JavaScript's Date.toString (its zone name in brackets
// cut off first). Zones are GMT, UTC or a numeric offset: a zone named by
// letters would be read by time.Parse as UTC whatever it is.
var textLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 GMT",
	"Mon, 2 Jan 2006 15:04:05 UTC",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon Jan 2 2006 15:04:05 GMT-0700",
}

// parseDate reads a query's date or time in any of the forms the old
// monitor's clients sent (see dateForms and docs/migration.md):
//
//   - an ISO date, 2024-05-24: the start of that day in UTC, or its last
//     millisecond when endOfDay is set (an end bound includes the day);
//   - RFC 3339, 2024-05-24T10:00:00Z or with an offset, a space allowed
//     for the T (2024-05-24 10:00:00+02:00);
//   - an ISO time without a zone, 2024-05-24T10:00:00 or 2024-05-24
//     10:00:00 (what the old dashboard sent): UTC, as the old monitor in
//     its container read it;
//   - an HTTP date, Fri, 24 May 2024 10:00:00 GMT, and JavaScript's
//     Date.toString, Fri May 24 2024 12:00:00 GMT+0200 (CEST);
//   - a whole number: Unix milliseconds, as JavaScript's Date.now gives.
//
// ok is false for anything else.
func parseDate(s string, endOfDay bool) (t time.Time, ok bool) {
	if s == "" {
		return time.Time{}, false
	}
	if isDigits(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms > maxUnixMilli {
			return time.Time{}, false
		}
		return time.UnixMilli(ms).UTC(), true
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if endOfDay {
			return d.AddDate(0, 0, 1).Add(-time.Millisecond), true
		}
		return d, true
	}
	if n := len(time.DateOnly); len(s) > n && (s[n] == 'T' || s[n] == ' ') && isDate(s[:n]) {
		iso := s[:n] + "T" + s[n+1:]
		if t, err := time.Parse(time.RFC3339Nano, iso); err == nil {
			return t, true
		}
		for _, layout := range zonelessLayouts {
			if t, err := time.Parse(layout, iso); err == nil {
				return t, true
			}
		}
		return time.Time{}, false
	}
	if i := strings.Index(s, " ("); i > 0 && strings.HasSuffix(s, ")") {
		s = s[:i]
	}
	for _, layout := range textLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isDate reports whether s has the shape of an ISO date, 2024-05-24.
func isDate(s string) bool {
	return len(s) == 10 && s[4] == '-' && s[7] == '-' && isDigits(s[:4]) && isDigits(s[5:7]) && isDigits(s[8:])
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
