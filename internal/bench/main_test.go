package bench

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets the test binary serve as the engine and bare-client
// children too, as the benchmark command does (see ChildEnv).
func TestMain(m *testing.M) {
	if role := os.Getenv(ChildEnv); role != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		err := RunChild(ctx, role)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, role+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
