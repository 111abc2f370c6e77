package devstack

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// listening returns the bound addresses of this process's listening TCP
// sockets, as the kernel reports them (/proc/net/tcp and tcp6): what
// other machines could connect to, whatever the code meant to bind.
func listening(t *testing.T) []netip.AddrPort {
	t.Helper()
	mine := map[string]bool{} // socket inodes of this process
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list this process's sockets: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var addrs []netip.AddrPort
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the heading
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !mine[fields[9]] { // 0A: LISTEN
				continue
			}
			addrs = append(addrs, procAddr(t, fields[1]))
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return addrs
}

// procAddr reads an address of /proc/net/tcp{,6}: the IP as 32-bit words
// in host (little-endian) order, then the port, both in hex.
func procAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ipHex, portHex, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	port, err2 := strconv.ParseUint(portHex, 16, 16)
	if err != nil || err2 != nil || (len(raw) != 4 && len(raw) != 16) {
		t.Fatalf("unreadable socket address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		slices.Reverse(raw[i : i+4])
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}

// withPort0 is addr's host with port 0, for a free port on it.
func withPort0(t *testing.T, addr string) string {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(host, "0")
}

// runStack runs the stack on o until the test ends and returns its banner
// once printed.
func runStack(t *testing.T, o Options) string {
	t.Helper()
	banner := &syncWriter{}
	o.Banner = banner
	o.DataDir = t.TempDir()
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "the banner", func() bool { return strings.Contains(banner.String(), "Stop with Ctrl-C.") })
	return banner.String()
}

// TestDevStackListensOnLoopbackOnly runs the dev stack on its default
// addresses (ports made free; cmd/sendhooks-dev checks its flags use them): every socket it listens on is bound to
// 127.0.0.1, as the kernel reports it, and the banner warns of nothing.
func TestDevStackListensOnLoopbackOnly(t *testing.T) {
	o := Options{RedisAddr: DefaultRedisAddr, APIAddr: DefaultAPIAddr, DashboardAddr: DefaultDashboardAddr}
	if o.RedisAddr != "127.0.0.1:6379" || o.APIAddr != "127.0.0.1:5002" || o.DashboardAddr != "127.0.0.1:3000" {
		t.Fatalf("default addresses: redis %s, API %s, dashboard %s; want 127.0.0.1:6379, 127.0.0.1:5002, 127.0.0.1:3000", o.RedisAddr, o.APIAddr, o.DashboardAddr)
	}
	o.RedisAddr, o.APIAddr, o.DashboardAddr = withPort0(t, o.RedisAddr), withPort0(t, o.APIAddr), withPort0(t, o.DashboardAddr)

	before := listening(t)
	banner := runStack(t, o)
	var started []netip.AddrPort
	for _, a := range listening(t) {
		if !slices.Contains(before, a) {
			started = append(started, a)
		}
	}
	// Redis, the API and the dashboard.
	if len(started) < 3 {
		t.Fatalf("the stack listens on %v, want at least Redis, the API and the dashboard", started)
	}
	for _, a := range started {
		if a.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("the stack listens on %s, not on 127.0.0.1", a)
		}
	}
	if strings.Contains(banner, "WARNING") {
		t.Errorf("the banner warns on loopback addresses:\n%s", banner)
	}
}

// TestDevStackWarnsWhenReachableFromTheNetwork runs the stack with the API
// on every interface (-api-addr :port): the kernel shows it so, and the
// banner warns, naming the API and its flag, and only it.
func TestDevStackWarnsWhenReachableFromTheNetwork(t *testing.T) {
	o := Options{RedisAddr: "127.0.0.1:0", APIAddr: ":0", DashboardAddr: "127.0.0.1:0"}
	before := listening(t)
	banner := runStack(t, o)
	wildcard := 0
	for _, a := range listening(t) {
		if !slices.Contains(before, a) && a.Addr().IsUnspecified() {
			wildcard++
		}
	}
	if wildcard != 1 {
		t.Fatalf("%d new listeners on every interface, want 1 (the API)", wildcard)
	}
	lines := strings.Split(banner, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "WARNING: reachable from the network, without login:") })
	if i < 0 || i+1 >= len(lines) {
		t.Fatalf("no warning in the banner:\n%s", banner)
	}
	if f := strings.Fields(lines[i+1]); len(f) != 3 || f[0] != "API" || !strings.HasPrefix(f[1], "[::]:") || f[2] != "(-api-addr)" {
		t.Errorf("the warning names %q, want the API on [::]:port (-api-addr)", lines[i+1])
	}
	if strings.Contains(banner, "(-dashboard-addr)") || strings.Contains(banner, "(-redis-addr)") {
		t.Errorf("the warning names a loopback listener:\n%s", banner)
	}
}

// TestDemoSendRefusesCrossSite posts a job to /demo/send as a page of
// another site would (a form, a text/plain fetch): refused with 403 and
// nothing queued; a JSON post, as the banner's curl command sends it,
// queues it.
func TestDemoSendRefusesCrossSite(t *testing.T) {
	o := Options{RedisAddr: freeAddr(t), APIAddr: freeAddr(t), DashboardAddr: freeAddr(t)}
	runStack(t, o)
	rdb := redis.NewClient(&redis.Options{Addr: o.RedisAddr})
	defer rdb.Close()
	queued := func() int64 {
		n, err := rdb.XLen(context.Background(), sendhooks.DefaultJobStream).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		return n
	}
	job := `{"url":"http://127.0.0.1:1/x","webhookId":"from-evil","data":{}}`
	post := func(header http.Header) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+o.APIAddr+"/demo/send", strings.NewReader(job))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	for name, h := range map[string]http.Header{
		"form":            {"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/x-www-form-urlencoded"}},
		"text/plain":      {"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"text/plain"}},
		"no Sec-Fetch":    {"Origin": {"http://evil.example"}, "Content-Type": {"text/plain"}},
		"form, no origin": {"Content-Type": {"application/x-www-form-urlencoded"}},
	} {
		if status, body := post(h); status != http.StatusForbidden || !strings.HasPrefix(body, `{"code":"CROSS_SITE_REQUEST","description":"refused: `) {
			t.Errorf("%s: %d %s, want 403 CROSS_SITE_REQUEST", name, status, body)
		}
	}
	if n := queued(); n != 0 {
		t.Fatalf("refused posts queued %d jobs", n)
	}
	// (The engine may take the job at once, so its answer is the check.)
	if status, body := post(http.Header{"Content-Type": {"application/json"}}); status != http.StatusOK || !strings.Contains(body, `"status":"sent to stream"`) {
		t.Fatalf("JSON post: %d %s, want 200", status, body)
	}
}
