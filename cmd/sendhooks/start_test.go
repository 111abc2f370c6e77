package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
