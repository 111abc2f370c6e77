package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sendhooks/sendhooks/internal/redistest"
)

// runAsSendhooks makes the test binary run the engine binary's main, so
// that the tests below run the real command line, wiring included.
const runAsSendhooks = "SENDHOOKS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsSendhooks) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runBinary runs the binary with args and stdin, in an empty directory
// (so no ./config.json is read), and returns its output and exit code.
func runBinary(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), runAsSendhooks+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func TestSendSubcommandEnqueuesAJob(t *testing.T) {
	srv := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"redisAddress":"`+srv.Addr()+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runBinary(t, "", "send", "-config", cfg, "-url", "http://127.0.0.1:8080/hook", "-data", `{"a":1}`, "-webhook-id", "w-1")
	if code != 0 {
		t.Fatalf("sendhooks send exited %d: %s", code, stderr)
	}
	entries, err := srv.Client(t).XRange(context.Background(), "hooks", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE hooks: %v", err)
	}
	want := `{"url":"http://127.0.0.1:8080/hook","webhookId":"w-1","data":{"a":1}}`
	if len(entries) != 1 || stdout != entries[0].ID+"\n" || entries[0].Values["data"] != want {
		t.Errorf("stdout %q, stream %v; want the id of one entry with data %s", stdout, entries, want)
	}
}

func TestSendSubcommandReportsABadJob(t *testing.T) {
	stdout, stderr, code := runBinary(t, `{"webhookId":"w"}`, "send", "-job", "-")
	want := "sendhooks: send: -job -: bad job: the job has no \"url\"\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", code, stdout, stderr, want)
	}
}
