package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// loadWithNginx loads docker-compose.yaml with deploy/compose.nginx.yaml
// over it.
func loadWithNginx(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	return loadProject(t, env, "docker-compose.yaml", "deploy/compose.nginx.yaml")
}

func TestNginxOverride(t *testing.T) {
	p, err := loadWithNginx(t, "CERTBOT_EMAIL=ops@example.com")
	if err != nil {
		t.Fatalf("load with deploy/compose.nginx.yaml: %v", err)
	}
	nginx := service(t, p, "nginx")
	if got := ports(nginx); !slices.Equal(got, []string{":443->443", ":80->80"}) {
		t.Errorf("nginx ports = %q, want 80 and 443", got)
	}
	want := []string{"volume nginx-secrets:/etc/letsencrypt", "bind ./deploy/nginx/sendhooks.conf:/etc/nginx/user_conf.d/sendhooks.conf:ro"}
	if got := volumes(t, nginx); !slices.Equal(got, want) {
		t.Errorf("nginx volumes = %q, want %q", got, want)
	}
	if got := nginx.Environment["CERTBOT_EMAIL"]; got == nil || *got != "ops@example.com" {
		t.Errorf("CERTBOT_EMAIL = %v, want ops@example.com", got)
	}
	for _, name := range []string{"sendhooks-monitoring", "flask-api"} {
		if got := ports(service(t, p, name)); len(got) != 0 {
			t.Errorf("%s still publishes %q behind nginx", name, got)
		}
		if c := nginx.DependsOn[name].Condition; c != types.ServiceConditionHealthy {
			t.Errorf("nginx waits for %s to be %q, want healthy", name, c)
		}
	}
	if got := ports(service(t, p, "redis")); !slices.Equal(got, []string{"127.0.0.1:6379->6379"}) {
		t.Errorf("redis ports = %q, want the loopback one kept", got)
	}
}

func TestNginxOverrideNeedsCertbotEmail(t *testing.T) {
	_, err := loadWithNginx(t)
	if err == nil || !strings.Contains(err.Error(), "set CERTBOT_EMAIL to the address Let's Encrypt writes to") {
		t.Errorf("load without CERTBOT_EMAIL = %v, want the error asking for it", err)
	}
}

// Every upstream of the nginx config names a compose service and a port
// that service listens on inside the network: the port its ports: entries
// map to, or, for a service nginx hides, the one it mapped before.
func TestNginxUpstreamsAreComposeServices(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nginx", "sendhooks.conf"))
	if err != nil {
		t.Fatal(err)
	}
	p := loadCompose(t)
	upstream := regexp.MustCompile(`(?m)^upstream (\w+)\s*\{\s*server ([\w-]+):(\d+);`)
	found := upstream.FindAllStringSubmatch(string(conf), -1)
	if len(found) != 3 {
		t.Fatalf("found %d upstreams, want 3 (producer API, dashboard, backend): %q", len(found), found)
	}
	for _, m := range found {
		s, err := p.GetService(m[2])
		if err != nil {
			t.Errorf("upstream %s: %v", m[1], err)
			continue
		}
		targets := []string{}
		for _, port := range s.Ports {
			targets = append(targets, strconv.FormatUint(uint64(port.Target), 10))
		}
		if !slices.Contains(targets, m[3]) {
			t.Errorf("upstream %s points at %s:%s, but %s listens on %q", m[1], m[2], m[3], m[2], targets)
		}
		if !strings.Contains(string(conf), "proxy_pass http://"+m[1]+";") {
			t.Errorf("upstream %s is not used by any proxy_pass", m[1])
		}
	}
}

// docs/deploy.md shows deploy/nginx/sendhooks.conf as it is.
func TestDeployDocShowsTheNginxConfig(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```nginx\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("docs/deploy.md has no nginx code block")
	}
	conf, err := os.ReadFile(filepath.Join(root, "deploy", "nginx", "sendhooks.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// The file starts with a comment header the doc leaves out.
	body := string(conf)
	for strings.HasPrefix(body, "#") {
		_, body, _ = strings.Cut(body, "\n")
	}
	if block != body {
		t.Errorf("the nginx block of docs/deploy.md differs from deploy/nginx/sendhooks.conf:\n--- doc\n%s\n--- file\n%s", block, body)
	}
}
