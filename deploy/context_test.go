package deploy

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// excluded reports whether the build context leaves out rel (a slash
// path relative to the repository): as Docker does, a path is out when it
// or one of its parent folders matches a pattern.
func excluded(patterns []string, rel string) bool {
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, prefix); ok {
				return true
			}
		}
	}
	return false
}

// buildContext copies into a temporary folder what docker build would
// send as the context of the repository, that is everything .dockerignore
// leaves in.
func buildContext(t *testing.T) string {
	t.Helper()
	patterns := dockerignore(t)
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") || strings.Contains(p, "**") {
			t.Fatalf(".dockerignore pattern %q: excluded() knows only plain patterns; teach it this one", p)
		}
	}
	dst := t.TempDir()
	src, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		if excluded(patterns, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy the build context: %v", err)
	}
	return dst
}

func TestDockerignoreKeepsSecretsAndNoiseOut(t *testing.T) {
	patterns := dockerignore(t)
	for _, rel := range []string{".git/config", ".env", ".env.local", "config.json", "docs/x.md", "examples/flask-api/app.py", "sendhooks", "x.test"} {
		if !excluded(patterns, rel) {
			t.Errorf("%s is sent to docker build; .dockerignore should leave it out", rel)
		}
	}
	for _, rel := range []string{"go.mod", "go.sum", "cmd/sendhooks/main.go", "engine/engine.go", "sendhooks.go"} {
		if excluded(patterns, rel) {
			t.Errorf("%s is left out of the build context, but the build needs it", rel)
		}
	}
}

// The Go build the Dockerfiles run succeeds on exactly the context docker
// build would get, so .dockerignore leaves out nothing that a package
// (or a go:embed) needs. It runs the go command of the machine, as
// golang:1.26 would.
func TestDockerBuildSucceedsOnTheBuildContext(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries; skipped with -short")
	}
	ctx := buildContext(t)
	for _, img := range images {
		if !img.goBuild {
			continue
		}
		stages := parseDockerfile(t, filepath.Join(root, img.dockerfile))
		run, _ := stages[0].lastArgs("RUN")
		pkg := mainPackage.FindString(run.args)
		t.Run(img.dockerfile, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bin")
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/sendhooks/sendhooks.Version=test", "-o", out, pkg)
			cmd.Dir = ctx
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false")
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s in the build context: %v\n%s", pkg, err, msg)
			}
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				t.Errorf("no binary: %v", err)
			}
		})
	}
}
