package sendhooks

import (
	"strings"
	"testing"
	"time"
)

// TestParseTimeReadsZonesNamedByTheirOffset reads the older engine's
// times written in zones without a letter abbreviation, which Go names by
// their offset ("+0330 +0330"): they give the exact instant.
func TestParseTimeReadsZonesNamedByTheirOffset(t *testing.T) {
	t.Parallel()
	// Fixed strings, so that this part does not depend on the host's tzdata.
	for s, want := range map[string]time.Time{
		"2026-12-02 19:37:45.5 +0330 +0330":                 time.Date(2026, 12, 2, 16, 7, 45, 500_000_000, time.UTC),
		"2026-12-02 19:37:45.5 +0330 +0330 m=+12.000000001": time.Date(2026, 12, 2, 16, 7, 45, 500_000_000, time.UTC),
		"2026-12-02 22:03:17.230666251 +0545 +0545":         time.Date(2026, 12, 2, 16, 18, 17, 230666251, time.UTC),
		"2026-12-02 20:48:17 +0430 +0430":                   time.Date(2026, 12, 2, 16, 18, 17, 0, time.UTC),
		"2026-12-02 06:48:17.25 -0930 -0930":                time.Date(2026, 12, 2, 16, 18, 17, 250_000_000, time.UTC),
		"2026-12-02 12:18:17 -0400 -04":                     time.Date(2026, 12, 2, 16, 18, 17, 0, time.UTC),
	} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	// As the older engine wrote them: time.Now() in the host's zone, with
	// its monotonic clock reading.
	for _, name := range []string{"Asia/Tehran", "Asia/Kathmandu", "Asia/Kabul", "Pacific/Chatham", "Australia/Eucla", "Pacific/Marquesas", "America/Caracas"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Logf("skip %s: %v", name, err)
			continue
		}
		now := time.Now().In(loc)
		got, err := ParseTime(now.String())
		if _, wantOffset := now.Zone(); err != nil || !got.Equal(now) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", now.String(), got, err, now)
		} else if _, offset := got.Zone(); offset != wantOffset {
			t.Errorf("ParseTime(%q) has offset %d, want %d", now.String(), offset, wantOffset)
		}
	}
	unnamed := time.Date(2026, 12, 2, 19, 37, 45, 5, time.FixedZone("", 3*3600+30*60))
	if got, err := ParseTime(unnamed.String()); err != nil || !got.Equal(unnamed) {
		t.Errorf("ParseTime(%q) = %v, %v; want %v", unnamed.String(), got, err, unnamed)
	}
	// A name that is not the offset before it is no time Go wrote.
	for _, s := range []string{"2026-12-02 19:37:45.5 +0330 +0430", "2026-12-02 19:37:45.5 +0330 +0330 +0330", "2026-12-02 +0330 +0330"} {
		if _, err := ParseTime(s); err == nil || !strings.Contains(err.Error(), `"`+s+`"`) {
			t.Errorf("ParseTime(%q) = %v, want an error naming the value", s, err)
		}
	}
}
