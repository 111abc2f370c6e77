package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sendhooks/sendhooks/engine"
)

// monitorVariables are the monitor's environment variables with the
// values .env.example must give them for the compose stack.
var monitorVariables = map[string]string{
	"BACKEND_PORT":        "5002",
	"DASHBOARD_PORT":      "3000",
	"MONGODB_URI":         "mongodb://mongo:27017/sendhooks",
	"SQLITE_PATH":         "",
	"RETENTION":           "720h",
	"REDIS_HOST":          "redis",
	"REDIS_PORT":          "6379",
	"REDIS_PASSWORD":      "",
	"REDIS_DB":            "0",
	"REDIS_TLS":           "false",
	"STREAM_KEY":          "hooks-status",
	"JOB_STREAM_KEY":      "hooks",
	"ALLOWED_ORIGINS":     "http://localhost:3000",
	"SENDHOOKS_API_TOKEN": "",
	"CONSUMER_GROUP":      "sendhooks-monitor",
	"CONSUMER_NAME":       "",
	"LOG_LEVEL":           "info",
	"LOG_FORMAT":          "json",

	"SENDHOOKS_DASHBOARD_USER":           "",
	"SENDHOOKS_DASHBOARD_PASSWORD":       "",
	"SENDHOOKS_DASHBOARD_SESSION_SECRET": "",
	"SENDHOOKS_DASHBOARD_SECURE_COOKIES": "false",
}

// envExample reads .env.example as NAME=value lines, failing the test for
// a variable given twice or not documented: each block of lines (between
// blank lines) holding variables must start with a comment.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	documented := false // the current block starts with a comment
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n, first := 1, true; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			first = true
			continue
		case first:
			documented = strings.HasPrefix(line, "#")
		}
		first = false
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if !documented {
			t.Errorf(".env.example:%d: %s has no comment above it", n, name)
		}
		if _, dup := vars[name]; dup {
			t.Errorf(".env.example:%d: %s is given twice", n, name)
		}
		vars[name] = value
	}
	return vars
}

func TestEnvExampleDocumentsEveryMonitorVariable(t *testing.T) {
	got := envExample(t)
	for name, want := range monitorVariables {
		v, ok := got[name]
		switch {
		case !ok:
			t.Errorf(".env.example lacks %s", name)
		case v != want:
			t.Errorf(".env.example sets %s=%q, want %q", name, v, want)
		}
	}
	for name := range got {
		if _, ok := monitorVariables[name]; !ok {
			t.Errorf(".env.example sets %s, which is not a monitor variable this test knows", name)
		}
	}
	text, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, warning := range []string{"WARNING: empty means the API", "WARNING: empty means the dashboard"} {
		if !bytes.Contains(text, []byte(warning)) {
			t.Errorf(".env.example lacks the warning %q", warning)
		}
	}
}

// config.example.json sets every key to its default, so loading it gives
// exactly the built-in defaults.
func TestConfigExampleLoadsAsTheDefaults(t *testing.T) {
	got, err := engine.Load(filepath.Join(root, "config.example.json"), nil)
	if err != nil {
		t.Fatalf("engine.Load(config.example.json): %v", err)
	}
	want, err := engine.Default().Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.json loads as\n%v\nwant the defaults\n%v", got, want)
	}
}

// consumerName is the one key config.example.json leaves out: its default
// is the host name, which no file can spell, and a fixed name shared by
// several engines would break the group (docs/deploy.md says so).
const leftOut = "consumerName"

// Every key of the README's configuration table is in config.example.json.
func TestConfigExampleHasEveryDocumentedKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "config.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var example map[string]json.RawMessage
	if err := json.Unmarshal(data, &example); err != nil {
		t.Fatalf("config.example.json: %v", err)
	}
	documented := readmeConfigKeys(t)
	for _, key := range documented {
		if _, ok := example[key]; !ok && key != leftOut {
			t.Errorf("config.example.json lacks %q, which the README documents", key)
		}
	}
	if _, ok := example[leftOut]; ok {
		t.Errorf("config.example.json sets %q; leave it to its default, the host name", leftOut)
	}
	for key := range example {
		if !slices.Contains(documented, key) {
			t.Errorf("config.example.json sets %q, which the README's table does not document", key)
		}
	}
}

// readmeConfigKeys returns the keys in the first column of the README's
// configuration table, plus the two the older engine's nested shape adds
// (broker and channelSize, described above the table).
func readmeConfigKeys(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	code := regexp.MustCompile("`([A-Za-z]+)`")
	var keys []string
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			keys = append(keys, m[1])
		}
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in the README's configuration table: %v", len(keys), keys)
	}
	return keys
}

// The engine in compose reads config.example.json with the service's
// environment on top: it reaches Redis at redis:6379, keeps the SSRF guard
// on unless told, and uses the streams the monitor reads and writes.
func TestComposeEngineConfig(t *testing.T) {
	for _, tt := range []struct {
		env          []string
		allowPrivate bool
	}{
		{nil, false},
		{[]string{"SENDHOOKS_ALLOW_PRIVATE_NETWORKS=true"}, true},
	} {
		p := loadCompose(t, tt.env...)
		env := service(t, p, "sendhooks").Environment
		getenv := func(k string) string {
			if v := env[k]; v != nil {
				return *v
			}
			return ""
		}
		cfg, err := engine.Load(filepath.Join(root, "config.example.json"), getenv)
		if err != nil {
			t.Fatalf("engine.Load with the compose environment %v: %v", env, err)
		}
		if cfg.Redis.Address != "redis:6379" || cfg.AllowPrivateNetworks != tt.allowPrivate || cfg.MetricsAddress != ":9090" {
			t.Errorf("with %v: redisAddress %q, allowPrivateNetworks %v, metricsAddress %q; want redis:6379, %v, :9090",
				tt.env, cfg.Redis.Address, cfg.AllowPrivateNetworks, cfg.MetricsAddress, tt.allowPrivate)
		}
		monitor := envExample(t)
		if cfg.JobStream != monitor["JOB_STREAM_KEY"] || cfg.StatusStream != monitor["STREAM_KEY"] {
			t.Errorf("engine streams %q/%q, monitor's JOB_STREAM_KEY/STREAM_KEY %q/%q: they must match",
				cfg.JobStream, cfg.StatusStream, monitor["JOB_STREAM_KEY"], monitor["STREAM_KEY"])
		}
		if host, port := monitor["REDIS_HOST"], monitor["REDIS_PORT"]; host+":"+port != cfg.Redis.Address {
			t.Errorf("engine Redis %s, monitor's %s:%s: they must match", cfg.Redis.Address, host, port)
		}
	}
}
