package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFirstWebhookWithRedisCLI does what the README's first steps do: run
// the stack, push a job with redis-cli into the embedded Redis, and find it
// delivered to a local receiver and shown by the API.
func TestFirstWebhookWithRedisCLI(t *testing.T) {
	redisCLI, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found (it comes with the redis-server package): %v", err)
	}
	var mu sync.Mutex
	var got []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("webhook-id")+" "+string(body))
		mu.Unlock()
	}))
	defer receiver.Close()

	o := Options{
		RedisAddr:     freeAddr(t),
		APIAddr:       freeAddr(t),
		DashboardAddr: freeAddr(t),
		DataDir:       t.TempDir(),
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	banner := &syncWriter{}
	o.Banner = banner
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	api := "http://" + o.APIAddr
	waitFor(t, "the API to answer", func() bool {
		resp, err := http.Get(api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	_, port, _ := net.SplitHostPort(o.RedisAddr)
	job := `{"url":"` + receiver.URL + `/hook","webhookId":"hello-1","data":{"hello":"world"}}`
	out, err := exec.Command(redisCLI, "-p", port, "XADD", "hooks", "*", "data", job).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli XADD: %v\n%s", err, out)
	}

	waitFor(t, "the receiver to get the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	if got[0] != `hello-1 {"hello":"world"}` {
		t.Errorf("receiver got %q", got[0])
	}
	var list struct {
		Data []struct {
			ExternalID    string `json:"externalId"`
			Status        string `json:"status"`
			NumberOfTries int    `json:"numberOfTries"`
		} `json:"data"`
	}
	waitFor(t, "the API to show the webhook delivered", func() bool {
		resp, err := http.Get(api + "/api/sendhooks/v1/hooks?status=success")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&list) == nil && len(list.Data) == 1
	})
	if h := list.Data[0]; h.ExternalID != "hello-1" || h.Status != "success" || h.NumberOfTries != 1 {
		t.Errorf("API shows %+v", h)
	}
	resp, err := http.Get("http://" + o.DashboardAddr + "/?status=success")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), ">hello-1<") {
		t.Errorf("dashboard list: status %d, hello-1 shown: %t", resp.StatusCode, strings.Contains(string(page), "hello-1"))
	}
	waitFor(t, "the banner's redis-cli command", func() bool {
		return strings.Contains(banner.String(), "redis-cli -p "+port+" XADD hooks")
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncWriter lets the test read what Run writes from another goroutine.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
