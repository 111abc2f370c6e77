package deploy

import (
	"maps"
	"slices"
	"testing"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/web"
)

// .env.example sets exactly the variables the monitor reads, and the
// monitor accepts its values: a variable added to the monitor, or renamed,
// fails here until .env.example documents it.
func TestEnvExampleIsWhatTheMonitorReads(t *testing.T) {
	example := envExample(t)
	asked := map[string]bool{}
	getenv := func(name string) string {
		asked[name] = true
		return example[name]
	}
	cfg, err := monitor.LoadConfig(getenv)
	if err != nil {
		t.Fatalf("monitor.LoadConfig with .env.example: %v", err)
	}
	if _, err := web.LoadDashboardConfig(getenv); err != nil {
		t.Fatalf("web.LoadDashboardConfig with .env.example: %v", err)
	}
	if got, want := slices.Sorted(maps.Keys(asked)), slices.Sorted(maps.Keys(example)); !slices.Equal(got, want) {
		t.Errorf("the monitor reads %q,\n.env.example sets %q", got, want)
	}
	if cfg.BackendPort != 5002 || cfg.DashboardPort != 3000 || cfg.RedisAddr() != "redis:6379" ||
		cfg.MongoDatabase != "sendhooks" || cfg.StreamKey != "hooks-status" || cfg.JobStreamKey != "hooks" {
		t.Errorf("monitor config from .env.example = %+v", cfg)
	}
}
