package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs main instead of the tests when the test binary is
// re-executed as the command.
func TestMain(m *testing.M) {
	if os.Getenv("SENDHOOKS_DEV_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestFlagsDefaultToLoopback reads the command's own usage: the API, the
// dashboard and the embedded Redis default to 127.0.0.1.
func TestFlagsDefaultToLoopback(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-h")
	cmd.Env = append(os.Environ(), "SENDHOOKS_DEV_RUN_MAIN=1")
	out, _ := cmd.CombinedOutput() // -h exits 2 after the usage
	usage := string(out)
	for flag, def := range map[string]string{"-redis-addr": "127.0.0.1:6379", "-api-addr": "127.0.0.1:5002", "-dashboard-addr": "127.0.0.1:3000"} {
		i := strings.Index(usage, "  "+flag+" string\n")
		if i < 0 {
			t.Fatalf("no %s in the usage:\n%s", flag, usage)
		}
		help, _, _ := strings.Cut(usage[i+len(flag)+10:], "\n  -")
		if !strings.Contains(help, `(default "`+def+`")`) {
			t.Errorf("%s: %q, want the default %q", flag, help, def)
		}
	}
}
