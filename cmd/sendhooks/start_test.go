package main

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// The engine started on the older engine's example config (nested,
// capitalised, "NumWorkers": 1) logs that deliveries run one at a time and
// how to raise it, next to the config, then runs and stops on SIGTERM.
func TestEngineWarnsOfFewWorkersAtStart(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	old := `{
  "Redis": {"redisAddress": "` + srv.Addr() + `", "redisPassword": "", "redisDb": "0", "redisSsl": "false",
    "redisCaCert": "/path/to/ca_cert.pem", "redisClientCert": "/path/to/client_cert.pem",
    "redisClientKey": "/path/to/client_key.pem",
    "redisStreamName": "example_stream", "redisStreamStatusName": "status_stream"},
  "SecretHashHeaderName": "dump_value", "Broker": "redis", "NumWorkers": 1, "ChannelSize": 1
}`
	if err := os.WriteFile(cfg, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-config", cfg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), runAsSendhooks+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		for s := bufio.NewScanner(stderr); s.Scan(); {
			lines <- s.Text()
		}
	}()

	var logged []string
	deadline := time.After(30 * time.Second)
	for warned := false; !warned; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the engine stopped before warning: %q", logged)
			}
			logged = append(logged, line)
			warned = strings.Contains(line, "level=WARN")
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("no warning within 30s: %q", logged)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		logged = append(logged, line)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("engine after SIGTERM: %v; log %q", err, logged)
	}

	config := slicesIndex(logged, "config loaded")
	warning := slicesIndex(logged, "level=WARN")
	if config < 0 || warning != config+1 {
		t.Fatalf("want the warning right after the config line; log %q", logged)
	}
	for _, want := range []string{"numWorkers is 1", "deliveries run 1 at a time", "raise numWorkers", "SENDHOOKS_NUM_WORKERS"} {
		if !strings.Contains(logged[warning], want) {
			t.Errorf("warning %q lacks %q", logged[warning], want)
		}
	}
	if !strings.Contains(logged[config], "numWorkers=1") {
		t.Errorf("config line %q lacks numWorkers=1", logged[config])
	}
}

// slicesIndex is the index of the first line containing s, or -1.
func slicesIndex(lines []string, s string) int {
	for i, line := range lines {
		if strings.Contains(line, s) {
			return i
		}
	}
	return -1
}

// The older engine's example config says "NumWorkers": 1, which that engine
// ignored (it ran a goroutine per job); here it means one delivery at a
// time, so the start-up log warns, naming the value and how to raise it.
func TestLogConfigWarnsOfFewWorkers(t *testing.T) {
	t.Parallel()
	oldExample := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(oldExample, []byte(`{
  "Redis": {"redisAddress": "127.0.0.1:6379", "redisDb": "0", "redisSsl": "false",
    "redisStreamName": "example_stream", "redisStreamStatusName": "status_stream"},
  "SecretHashHeaderName": "dump_value", "Broker": "redis", "NumWorkers": 1, "ChannelSize": 1
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		workers string // SENDHOOKS_NUM_WORKERS; "" keeps the file's 1
		warn    string // the warning expected; "" for none
	}{
		{"", "numWorkers is 1, so deliveries run 1 at a time; raise numWorkers in the config file or set SENDHOOKS_NUM_WORKERS"},
		{"3", "numWorkers is 3, so deliveries run 3 at a time; raise numWorkers in the config file or set SENDHOOKS_NUM_WORKERS"},
		{"4", ""},
		{"64", ""},
	} {
		cfg, err := engine.Load(oldExample, func(name string) string {
			if name == "SENDHOOKS_NUM_WORKERS" {
				return tt.workers
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		var logged bytes.Buffer
		logConfig(slog.New(slog.NewTextHandler(&logged, nil)), oldExample, cfg)
		lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
		if !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "config loaded") || !strings.Contains(lines[0], "file="+oldExample) {
			t.Errorf("numWorkers %q: first line %q; want the config, with the file", tt.workers, lines[0])
		}
		switch {
		case tt.warn == "" && len(lines) != 1:
			t.Errorf("numWorkers %q: logged %q; want no warning", tt.workers, lines[1:])
		case tt.warn != "" && (len(lines) != 2 || !strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], tt.warn)):
			t.Errorf("numWorkers %q: logged %q; want a warning containing %q", tt.workers, lines[1:], tt.warn)
		}
	}
}

// A proxy variable that deliveries could not use stops the engine at
// start with an error naming the variable, its password hidden, before
// anything reaches Redis.
func TestEngineRefusesAnUnusableProxyAtStart(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Dir = t.TempDir() // no config.json
	cmd.Env = append(os.Environ(), runAsSendhooks+"=1", "SENDHOOKS_REDIS_ADDRESS=127.0.0.1:1",
		"HTTPS_PROXY=socks5://user:s3cret@proxy.corp:1080", "https_proxy=", "HTTP_PROXY=", "http_proxy=")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit code %d (%v), want 1; output:\n%s", code, err, out)
	}
	want := "sendhooks: HTTPS_PROXY=socks5://user:xxxxx@proxy.corp:1080: not a usable proxy: want http://host:port or https://host:port"
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "s3cret") {
		t.Fatalf("output:\n%s\nwant the line %q, and no password", out, want)
	}
}
