package web

import (
	"net/url"
	"testing"
	"time"
)

// TestParseDate reads every form the old monitor's clients sent, and
// refuses look-alikes.
func TestParseDate(t *testing.T) {
	day := time.Date(2024, 5, 24, 0, 0, 0, 0, time.UTC)
	at10 := time.Date(2024, 5, 24, 10, 0, 0, 0, time.UTC)
	endOfDay := day.AddDate(0, 0, 1).Add(-time.Millisecond)
	tests := []struct {
		in         string
		start, end time.Time // read as a start bound, as an end bound
	}{
		// ISO date: the whole day as an end bound.
		{"2024-05-24", day, endOfDay},
		// RFC 3339, with a T or a space.
		{"2024-05-24T10:00:00Z", at10, at10},
		{"2024-05-24T12:00:00+02:00", at10, at10},
		{"2024-05-24T10:00:00.5Z", at10.Add(500 * time.Millisecond), at10.Add(500 * time.Millisecond)},
		{"2024-05-24 12:00:00+02:00", at10, at10},
		// What the old dashboard sends: no zone, read as UTC; a time is
		// that instant, even at midnight as an end bound.
		{"2024-05-24 00:00:00", day, day},
		{"2024-05-24 10:00:00", at10, at10},
		{"2024-05-24T10:00:00", at10, at10},
		{"2024-05-24T10:00:00.250", at10.Add(250 * time.Millisecond), at10.Add(250 * time.Millisecond)},
		{"2024-05-24T10:00", at10, at10},
		// RFC 1123 (toUTCString, HTTP dates), with GMT, UTC or an offset.
		{"Fri, 24 May 2024 10:00:00 GMT", at10, at10},
		{"Fri, 24 May 2024 10:00:00 UTC", at10, at10},
		{"Fri, 24 May 2024 12:00:00 +0200", at10, at10},
		{"Fri, 4 May 2024 10:00:00 GMT", at10.AddDate(0, 0, -20), at10.AddDate(0, 0, -20)},
		// JavaScript's Date.toString.
		{"Fri May 24 2024 12:00:00 GMT+0200 (Central European Summer Time)", at10, at10},
		{"Fri May 24 2024 10:00:00 GMT+0000", at10, at10},
		// Unix milliseconds.
		{"1716544800000", at10, at10},
		{"1716544800123", at10.Add(123 * time.Millisecond), at10.Add(123 * time.Millisecond)},
		{"0", time.UnixMilli(0).UTC(), time.UnixMilli(0).UTC()},
		{"253402300799999", time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			endOfDay bool
			want     time.Time
		}{{false, tt.start}, {true, tt.end}} {
			got, ok := parseDate(tt.in, c.endOfDay)
			if !ok || !got.Equal(c.want) {
				t.Errorf("parseDate(%q, %v) = %v, %v; want %v", tt.in, c.endOfDay, got, ok, c.want)
			}
		}
	}

	for _, bad := range []string{
		"", "yesterday", "2024-13-01", "2024-02-30", "2024-05-24 25:00:00", "24/05/2024", "2024-05-24T10",
		"2024-05-24  10:00:00", "2024-05-24T10:00:00+2", "Fri, 24 May 2024 10:00:00 PST", "Fri, 24 May 2024",
		"253402300800000", "99999999999999999999", "-1716544800000", "1.5e12", "0x10", "2024-05-24\x00",
		"Fri May 24 2024 10:00:00 (UTC)", "2024-05-24T10:00:00Z (UTC)", "now",
	} {
		if got, ok := parseDate(bad, false); ok {
			t.Errorf("parseDate(%q) = %v, want refused", bad, got)
		}
	}
}

// TestPageAndLimitAsTheOldAPIReadThem checks the reading of page and
// limit against what the old API's parseInt(x) || default gave, with the
// new bounds: a page past 1,000,000 is refused, a limit above 100 served
// as 100.
func TestPageAndLimitAsTheOldAPIReadThem(t *testing.T) {
	tests := []struct {
		page, limit         string
		wantPage, wantLimit int
		capped              bool
	}{
		{"", "", 1, 10, false},
		{"2", "5", 2, 5, false},
		{"0", "0", 1, 10, false},
		{"-1", "-5", 1, 10, false},
		{"abc", "abc", 1, 10, false},
		{"2abc", "20abc", 2, 20, false},
		{"1.5", "7.9", 1, 7, false},
		{" 3 ", "+4", 3, 4, false},
		{"007", "0010", 7, 10, false},
		{"1000000", "100", 1000000, 100, false},
		{"1", "101", 1, 100, true},
		{"1", "500", 1, 100, true},
		{"1", "99999999999999999999999", 1, 100, true},
		{"", "-", 1, 10, false},
		{"+", "+-3", 1, 10, false},
	}
	for _, tt := range tests {
		p := newParams(url.Values{"page": {tt.page}, "limit": {tt.limit}}, "page", "limit")
		page := p.page(defaultPage, maxPage)
		limit, capped := p.limit(defaultLimit, maxLimit)
		if p.err != nil || page != tt.wantPage || limit != tt.wantLimit || capped != tt.capped {
			t.Errorf("page=%q limit=%q: page %d, limit %d, capped %v, err %v; want %d, %d, %v",
				tt.page, tt.limit, page, limit, capped, p.err, tt.wantPage, tt.wantLimit, tt.capped)
		}
	}
	for _, page := range []string{"1000001", "99999999999999999999", "2000000abc"} {
		p := newParams(url.Values{"page": {page}}, "page")
		if p.page(defaultPage, maxPage); p.err == nil {
			t.Errorf("page=%q was read, want refused", page)
		}
	}
}

// TestParameterNames checks which unknown names are ignored and which
// refused, on a route that reads and on one that changes state.
func TestParameterNames(t *testing.T) {
	tests := []struct {
		name                    string
		readRefused, strictRefd bool
	}{
		{"_", false, true},
		{"utm_source", false, true},
		{"cache-buster", false, true},
		{"", false, true},
		{"Status", true, true},
		{"SEARCH", true, true},
		{"status[$ne]", true, true},
		{"status[]", true, true},
		{"status.$ne", true, true},
		{"$where", true, true},
		{"a.b", true, true},
		{"{}", true, true},
		{"search ", true, true},
		{"é", true, true},
		{"\x00", true, true},
	}
	for _, tt := range tests {
		q := url.Values{tt.name: {"x"}, "status": {"failed"}}
		if got := newParams(q, "status", "search").err != nil; got != tt.readRefused {
			t.Errorf("%q on a reading route: refused %v, want %v", tt.name, got, tt.readRefused)
		}
		if got := newStrictParams(q, "status", "search").err != nil; got != tt.strictRefd {
			t.Errorf("%q on a bulk retry: refused %v, want %v", tt.name, got, tt.strictRefd)
		}
	}
}
