package soak

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestShortSoak is the CI version of the soak: 10 s at 100 jobs/s through a
// receiver failing a fifth of the requests and down 1 s out of every 4;
// every job must end with exactly one final status.
func TestShortSoak(t *testing.T) {
	var out strings.Builder
	res, err := Run(context.Background(), Options{
		Duration: 10 * time.Second, Rate: 100, Report: 2 * time.Second,
		FailRate: 0.2, DownEvery: 4 * time.Second, DownFor: time.Second,
		Drain: 60 * time.Second, Out: &out,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if res.Sent != 1000 {
		t.Errorf("sent %d jobs, want 1000", res.Sent)
	}
	if res.Lost != 0 || res.DoubleFinal != 0 || res.Finals != res.Sent {
		t.Errorf("lost %d, double finals %d, finals %d of %d sent", res.Lost, res.DoubleFinal, res.Finals, res.Sent)
	}
	if res.Delivered+res.Failed != res.Sent {
		t.Errorf("delivered %d + failed %d != sent %d", res.Delivered, res.Failed, res.Sent)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
