package monitor

import (
	"strings"
	"testing"
	"time"
)

func TestCountSegmentsCoverTheRangeOnce(t *testing.T) {
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) time.Time { return base.Add(d) }
	cases := []struct {
		from, to time.Time
		want     []Segment
	}{
		{ms(10 * time.Second), ms(20 * time.Second), []Segment{{"", ms(10 * time.Second), ms(20*time.Second + time.Millisecond)}}},
		{ms(30 * time.Second), ms(3*time.Minute + 5*time.Second), []Segment{
			{"", ms(30 * time.Second), ms(time.Minute)},
			{RollupMinute, ms(time.Minute), ms(3 * time.Minute)},
			{"", ms(3 * time.Minute), ms(3*time.Minute + 5*time.Second + time.Millisecond)},
		}},
		{ms(-90 * time.Second), ms(2*time.Hour + 30*time.Second), []Segment{
			{"", ms(-90 * time.Second), ms(-time.Minute)},
			{RollupMinute, ms(-time.Minute), ms(0)},
			{RollupHour, ms(0), ms(2 * time.Hour)},
			{"", ms(2 * time.Hour), ms(2*time.Hour + 30*time.Second + time.Millisecond)},
		}},
		{ms(0), ms(time.Hour - time.Millisecond), []Segment{{RollupHour, ms(0), ms(time.Hour)}}},
		{ms(time.Second), ms(0), nil},
	}
	for _, c := range cases {
		got := CountSegments(c.from, c.to)
		if len(got) != len(c.want) {
			t.Errorf("CountSegments(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
			continue
		}
		for i := range got {
			if got[i].Kind != c.want[i].Kind || !got[i].From.Equal(c.want[i].From) || !got[i].To.Equal(c.want[i].To) {
				t.Errorf("CountSegments(%v, %v)[%d] = %v, want %v", c.from, c.to, i, got[i], c.want[i])
			}
		}
	}
	// Open ends reach the far bounds with whole hours.
	open := CountSegments(time.Time{}, time.Time{})
	if len(open) != 1 || open[0].Kind != RollupHour || !open[0].From.Equal(minCreated) || !open[0].To.Equal(maxCreated) {
		t.Errorf("open range: %v", open)
	}
}

func TestLatencyBins(t *testing.T) {
	prev := -1.0
	for i := range maxLatencyBin {
		up := LatencyBinUpper(i)
		if up <= prev {
			t.Fatalf("bin %d upper %v not above bin %d's %v", i, up, i-1, prev)
		}
		prev = up
	}
	for _, ms := range []float64{0, 0.05, 0.1, 0.11, 1, 9.99, 10, 250, 1234.5, 30_000, 1e9} {
		b := LatencyBin(ms)
		up := LatencyBinUpper(b)
		if b < maxLatencyBin && (ms > up*1.001 || ms > 0.1 && up > ms*1.095) {
			t.Errorf("%v ms in bin %d, whose upper bound is %v: more than 9%% off", ms, b, up)
		}
	}
}

func TestRollupDeltaOfAStatusChange(t *testing.T) {
	c := time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)
	before := &Hook{Status: "retrying", URL: "http://127.0.0.1/x", Created: &c, Attempts: []Attempt{{Number: 1, DurationMs: 12}}}
	after := &Hook{Status: "success", URL: "http://127.0.0.1/x", Created: &c, Attempts: []Attempt{{Number: 1, DurationMs: 12}, {Number: 2, DurationMs: 3}}}
	d := RollupDelta{}
	d.Change(before, after)
	hour, minute := c.Truncate(time.Hour), c.Truncate(time.Minute)
	want := RollupDelta{
		{Kind: RollupMinute, Bucket: minute, Status: "retrying"}:                          -1,
		{Kind: RollupMinute, Bucket: minute, Status: "success"}:                           1,
		{Kind: RollupHour, Bucket: hour, Status: "retrying"}:                              -1,
		{Kind: RollupHour, Bucket: hour, Status: "success"}:                               1,
		{Kind: RollupReceiver, Bucket: hour, Status: "retrying", URL: "http://127.0.0.1"}: -1,
		{Kind: RollupReceiver, Bucket: hour, Status: "success", URL: "http://127.0.0.1"}:  1,
		{Kind: RollupLatency, Bucket: hour, Bin: LatencyBin(3)}:                           1,
	}
	if len(d) != len(want) {
		t.Fatalf("delta %v, want %v", d, want)
	}
	for k, n := range want {
		if d[k] != n {
			t.Errorf("%+v: %d, want %d", k, d[k], n)
		}
	}
}

func TestReceiverOf(t *testing.T) {
	long := "https://" + strings.Repeat("a", 600) + ".example/x"
	for _, c := range []struct{ url, want string }{
		{"https://hooks.example.com/services/T01/B02/secret", "https://hooks.example.com"},
		{"HTTPS://Hooks.Example.COM:8443/a?token=1#f", "https://hooks.example.com:8443"},
		{"http://user:pass@127.0.0.1:9001/x", "http://127.0.0.1:9001"},
		{" http://[::1]:8080/x ", "http://[::1]:8080"},
		{"http://127.0.0.1:9001", "http://127.0.0.1:9001"},
		{long, long[:maxRollupURL]},
		{"http://[fe80::1%25eth0]:80/x", "http://[fe80::1%25eth0]:80"},
		{"https://host.example/a%7Bb\x01#frag", "https://host.example"}, // the path is not read
		{"https://u:p@w@host.example?q=@x", "https://host.example"},
		{`http://<script>alert("x")</script>/y`, `http://<script>alert("x")<`},
		{"127.0.0.1:9001/x", ""}, // no scheme: not a URL
		{"/relative/path", ""},
		{"1http://host/", ""},
		{"ht tp://host/", ""},
		{"http:///path", ""},
		{"http://user@/path", ""},
		{"", ""},
	} {
		got := ReceiverOf(c.url)
		if got != c.want {
			t.Errorf("ReceiverOf(%q) = %q, want %q", c.url, got, c.want)
		}
		if again := ReceiverOf(got); again != got {
			t.Errorf("ReceiverOf(%q) = %q: a receiver must name itself", got, again)
		}
		// Earlier versions kept a URL's first 512 bytes: cut anywhere
		// after its host, it names the same receiver.
		if got != "" && len(got) < maxRollupURL && !strings.Contains(c.url, "@") {
			long := c.url + "/" + strings.Repeat("%7B", 300)
			for n := len(got) + 1; n <= maxRollupURL; n += 7 {
				if r := ReceiverOf(cut(long, n)); r != got {
					t.Errorf("ReceiverOf of %q cut at %d = %q, want %q", long, n, r, got)
				}
			}
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{Created: time.UnixMilli(1773145441123).UTC(), ID: "1773145441000-2/é"}
	got, err := ParseCursor(c.String())
	if err != nil || !got.Created.Equal(c.Created) || got.ID != c.ID {
		t.Fatalf("ParseCursor(%q) = %+v, %v", c.String(), got, err)
	}
	for _, bad := range []string{"", "12", "x.YQ", "12.!!", "12.gA"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) succeeded", bad)
		}
	}
}
