package deploy

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sendhooks/sendhooks/engine"
)

// root is the repository root, seen from this package's directory.
const root = ".."

// loadCompose loads docker-compose.yaml as docker compose would, with the
// variables of env (and only those) for interpolation. Loading also reads
// every required env_file, so a missing one fails here.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	p, err := loadProject(t, env, "docker-compose.yaml")
	if err != nil {
		t.Fatalf("load docker-compose.yaml: %v", err)
	}
	return p
}

// loadProject loads the compose files (relative to the repository, later
// ones over earlier ones, as docker compose -f a -f b does) with the
// variables of env for interpolation.
func loadProject(t *testing.T, env []string, files ...string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(abs, f)
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(abs), cli.WithEnv(env))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return opts.LoadProject(context.Background())
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return s
}

// repoPath is a path inside the repository, for comparing with the
// absolute paths the loader resolves.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func TestComposeHasTheArticleServices(t *testing.T) {
	p := loadCompose(t)
	if p.Name != "sendhooks" {
		t.Errorf("project name = %q, want sendhooks", p.Name)
	}
	got := slices.Sorted(maps.Keys(p.Services))
	want := []string{"flask-api", "mongo", "redis", "sendhooks", "sendhooks-monitoring"}
	if !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	if got := slices.Sorted(maps.Keys(p.Volumes)); !slices.Equal(got, []string{"mongo-data", "redis-data"}) {
		t.Errorf("named volumes = %v, want [mongo-data redis-data]", got)
	}
}

// ports lists the published ports as "host_ip:published->target".
func ports(s types.ServiceConfig) []string {
	var out []string
	for _, p := range s.Ports {
		out = append(out, p.HostIP+":"+p.Published+"->"+strconv.FormatUint(uint64(p.Target), 10))
	}
	slices.Sort(out)
	return out
}

// volumes lists the mounts as "type source:target[:ro]", sources of binds relative
// to the repository.
func volumes(t *testing.T, s types.ServiceConfig) []string {
	t.Helper()
	var out []string
	for _, v := range s.Volumes {
		src := v.Source
		if v.Type == types.VolumeTypeBind {
			rel, err := filepath.Rel(repoPath(t, "."), src)
			if err != nil {
				t.Fatal(err)
			}
			src = "./" + rel
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which does not exist: %v", s.Name, src, err)
			}
		}
		m := v.Type + " " + src + ":" + v.Target
		if v.ReadOnly {
			m += ":ro"
		}
		out = append(out, m)
	}
	return out
}

func healthTest(s types.ServiceConfig) string {
	if s.HealthCheck == nil {
		return ""
	}
	return strings.Join(s.HealthCheck.Test, " ")
}

func dependsOn(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for name, d := range s.DependsOn {
		out[name] = d.Condition
	}
	return out
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	type want struct {
		image     string
		command   string
		ports     []string
		volumes   []string
		health    string
		dependsOn map[string]string
	}
	tests := map[string]want{
		"redis": {
			image: "redis:7", command: "redis-server --appendonly yes",
			ports:   []string{"127.0.0.1:6379->6379"},
			volumes: []string{"volume redis-data:/data"},
			health:  "CMD redis-cli ping", dependsOn: map[string]string{},
		},
		"mongo": {
			image:   "mongo:7",
			volumes: []string{"volume mongo-data:/data/db"},
			health:  "CMD mongosh --quiet --eval db.adminCommand('ping').ok", dependsOn: map[string]string{},
		},
		"sendhooks": {
			volumes:   []string{"bind ./config.example.json:/root/config.json:ro"},
			health:    "CMD wget -q -O /dev/null http://127.0.0.1:9090/readyz",
			dependsOn: map[string]string{"redis": types.ServiceConditionHealthy},
		},
		"sendhooks-monitoring": {
			ports:  []string{":3000->3000", ":5002->5002"},
			health: "CMD wget -q -O /dev/null http://127.0.0.1:5002/healthz",
			dependsOn: map[string]string{
				"redis": types.ServiceConditionHealthy, "mongo": types.ServiceConditionHealthy,
			},
		},
		"flask-api": {
			ports:     []string{":5001->5000"},
			health:    "CMD python -c import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz')",
			dependsOn: map[string]string{"redis": types.ServiceConditionHealthy},
		},
	}
	for name, w := range tests {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			if s.Image != w.image {
				t.Errorf("image = %q, want %q", s.Image, w.image)
			}
			if got := strings.Join(s.Command, " "); got != w.command {
				t.Errorf("command = %q, want %q", got, w.command)
			}
			if got := ports(s); !slices.Equal(got, w.ports) {
				t.Errorf("ports = %q, want %q", got, w.ports)
			}
			if got := volumes(t, s); !slices.Equal(got, w.volumes) {
				t.Errorf("volumes = %q, want %q", got, w.volumes)
			}
			if got := healthTest(s); got != w.health {
				t.Errorf("healthcheck = %q, want %q", got, w.health)
			}
			if got := dependsOn(s); !maps.Equal(got, w.dependsOn) {
				t.Errorf("depends_on = %v, want %v", got, w.dependsOn)
			}
		})
	}
}

// The engine and the monitor get the time their own shutdown takes before
// Docker kills them: the engine its config file's shutdownTimeout for the
// requests in flight, and then the writing of their outcomes.
func TestComposeLetsTheEngineAndMonitorStop(t *testing.T) {
	p := loadCompose(t)
	cfg, err := engine.Load(filepath.Join(root, "config.example.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"sendhooks": 45 * time.Second, "sendhooks-monitoring": 20 * time.Second} {
		s := service(t, p, name)
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) != want {
			t.Errorf("%s: stop_grace_period = %v, want %v", name, s.StopGracePeriod, want)
		}
	}
	// The outcomes' write is bounded at 5s.
	if grace := service(t, p, "sendhooks").StopGracePeriod; grace != nil && time.Duration(*grace) < cfg.ShutdownTimeout+10*time.Second {
		t.Errorf("sendhooks: stop_grace_period %v leaves under 10s after the mounted config's shutdownTimeout %v", *grace, cfg.ShutdownTimeout)
	}
}

// Every service another depends on with service_healthy has a health check,
// or compose would wait for it forever.
func TestComposeHealthyDependenciesHaveHealthChecks(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				continue
			}
			if hc := service(t, p, dep).HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			}
		}
	}
}

func TestComposeBuildsFromThisRepository(t *testing.T) {
	p := loadCompose(t)
	want := map[string][2]string{ // service: context, dockerfile (relative to the repo)
		"sendhooks":            {".", "Dockerfile"},
		"sendhooks-monitoring": {".", "Dockerfile.monitor"},
		"flask-api":            {"examples/flask-api", "examples/flask-api/Dockerfile"},
	}
	for name, s := range p.Services {
		w, built := want[name]
		if !built {
			if s.Build != nil {
				t.Errorf("%s is built, want it to use image %q", name, s.Image)
			}
			continue
		}
		if s.Build == nil {
			t.Errorf("%s has no build section", name)
			continue
		}
		if s.Build.Context != repoPath(t, w[0]) {
			t.Errorf("%s build context = %s, want %s", name, s.Build.Context, repoPath(t, w[0]))
		}
		dockerfile := s.Build.Dockerfile
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(s.Build.Context, dockerfile)
		}
		if dockerfile != repoPath(t, w[1]) {
			t.Errorf("%s dockerfile = %s, want %s", name, dockerfile, repoPath(t, w[1]))
		}
		if _, err := os.Stat(dockerfile); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The monitor reads .env.example, then .env when there is one.
func TestComposeMonitorEnvironment(t *testing.T) {
	p := loadCompose(t)
	s := service(t, p, "sendhooks-monitoring")
	var files []string
	for _, f := range s.EnvFiles {
		rel, err := filepath.Rel(repoPath(t, "."), f.Path)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel+map[bool]string{true: " (required)", false: " (optional)"}[bool(f.Required)])
	}
	if want := []string{".env.example (required)", ".env (optional)"}; !slices.Equal(files, want) {
		t.Errorf("env_file = %q, want %q", files, want)
	}
	// The loader has merged the env files into the environment.
	for name := range monitorVariables {
		if _, ok := s.Environment[name]; !ok {
			t.Errorf("the monitor's environment lacks %s", name)
		}
	}
}

func TestComposeFlaskAPIReachesRedis(t *testing.T) {
	env := service(t, loadCompose(t), "flask-api").Environment
	for name, want := range map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "6379"} {
		if got := env[name]; got == nil || *got != want {
			t.Errorf("flask-api %s = %v, want %q", name, got, want)
		}
	}
}
