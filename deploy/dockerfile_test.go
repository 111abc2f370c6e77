package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts
	cmd  string // upper case: FROM, COPY, RUN, ...
	args string
}

// stage is one FROM and the instructions under it.
type stage struct {
	from   string // the base image
	name   string // the AS name, if any
	instrs []instruction
}

// parseDockerfile reads a Dockerfile into its stages. It knows what these
// tests need: comments, line continuations and FROM ... AS name.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		stages []stage
		cur    *instruction
		n      int
	)
	add := func(in instruction) {
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			s := stage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		}
		last := &stages[len(stages)-1]
		last.instrs = append(last.instrs, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments may sit inside continued instructions too
		}
		text, continued := strings.CutSuffix(line, `\`)
		if cur == nil {
			cmd, args, _ := strings.Cut(text, " ")
			cur = &instruction{line: n, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else {
			cur.args += " " + strings.TrimSpace(text)
		}
		if !continued {
			add(*cur)
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: the last instruction ends with a line continuation", path)
	}
	if len(stages) == 0 {
		t.Fatalf("%s: no FROM", path)
	}
	return stages
}

// words splits an instruction's arguments, in JSON (exec) form or not.
func words(t *testing.T, in instruction) []string {
	t.Helper()
	if strings.HasPrefix(in.args, "[") {
		var w []string
		if err := json.Unmarshal([]byte(in.args), &w); err != nil {
			t.Fatalf("line %d: %s %s: %v", in.line, in.cmd, in.args, err)
		}
		return w
	}
	return strings.Fields(in.args)
}

// lastArgs returns the arguments of the last cmd instruction of s.
func (s stage) lastArgs(cmd string) (instruction, bool) {
	for _, in := range slices.Backward(s.instrs) {
		if in.cmd == cmd {
			return in, true
		}
	}
	return instruction{}, false
}

// dockerignore reads the patterns of the repository's .dockerignore.
func dockerignore(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	return patterns
}

// images are the Dockerfiles that docker-compose.yaml builds (checked by
// TestComposeBuildsFromThisRepository), with their build contexts.
var images = []struct {
	dockerfile, context string
	cmd                 []string
	expose              string
	goBuild             bool // a Go program built in a golang stage
}{
	{"Dockerfile", ".", []string{"/sendhooks"}, "9090", true},
	{"Dockerfile.monitor", ".", []string{"/sendhooks-monitor"}, "5002 3000", true},
	{"examples/flask-api/Dockerfile", "examples/flask-api", []string{"python", "app.py"}, "5000", false},
}

// Every COPY and ADD source exists in the build context and is not left
// out of it by .dockerignore; copies from another stage are skipped.
func TestDockerfileSourcesExist(t *testing.T) {
	ignored := dockerignore(t)
	for _, img := range images {
		t.Run(img.dockerfile, func(t *testing.T) {
			ctx := filepath.Join(root, img.context)
			copies := 0
			for _, st := range parseDockerfile(t, filepath.Join(root, img.dockerfile)) {
				for _, in := range st.instrs {
					if in.cmd != "COPY" && in.cmd != "ADD" {
						continue
					}
					var args []string
					fromStage := false
					for _, w := range words(t, in) {
						switch {
						case strings.HasPrefix(w, "--from="):
							fromStage = true
						case !strings.HasPrefix(w, "--"):
							args = append(args, w)
						}
					}
					if fromStage {
						continue
					}
					if len(args) < 2 {
						t.Errorf("line %d: %s needs a source and a destination: %q", in.line, in.cmd, in.args)
						continue
					}
					for _, src := range args[:len(args)-1] {
						copies++
						matches, err := filepath.Glob(filepath.Join(ctx, src))
						if err != nil || len(matches) == 0 {
							t.Errorf("line %d: %s source %q does not exist in the build context %s", in.line, in.cmd, src, img.context)
						}
						if img.context != "." || src == "." {
							continue
						}
						for _, p := range ignored {
							if ok, _ := filepath.Match(p, filepath.Clean(src)); ok {
								t.Errorf("line %d: %s source %q is excluded by .dockerignore pattern %q", in.line, in.cmd, src, p)
							}
						}
					}
				}
			}
			if copies == 0 {
				t.Error("no COPY or ADD from the build context; is the parser right?")
			}
		})
	}
}

func TestDockerfileFinalStage(t *testing.T) {
	for _, img := range images {
		t.Run(img.dockerfile, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join(root, img.dockerfile))
			final := stages[len(stages)-1]
			user, ok := final.lastArgs("USER")
			if !ok {
				t.Fatal("the final stage sets no USER: the image would run as root")
			}
			name, _, _ := strings.Cut(user.args, ":")
			if name == "root" || name == "0" {
				t.Errorf("line %d: USER %s is root", user.line, user.args)
			}
			if cmd, ok := final.lastArgs("CMD"); !ok || !slices.Equal(words(t, cmd), img.cmd) {
				t.Errorf("CMD = %q, want %q", cmd.args, img.cmd)
			}
			if expose, ok := final.lastArgs("EXPOSE"); !ok || expose.args != img.expose {
				t.Errorf("EXPOSE %q, want %q", expose.args, img.expose)
			}
		})
	}
}

var (
	staticBuild = regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath -ldflags "-s -w[ "]`)
	mainPackage = regexp.MustCompile(`\./cmd/[A-Za-z0-9_-]+`)
)

// The Go images build a static binary of a main package that exists, in
// a golang stage, and ship it on a small base with CA certificates.
func TestDockerfileGoBuilds(t *testing.T) {
	for _, img := range images {
		if !img.goBuild {
			continue
		}
		t.Run(img.dockerfile, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join(root, img.dockerfile))
			if len(stages) < 2 {
				t.Fatalf("%d stage(s), want a multi-stage build", len(stages))
			}
			build, final := stages[0], stages[len(stages)-1]
			if build.from != "golang:1.26" {
				t.Errorf("build stage FROM %s, want golang:1.26", build.from)
			}
			run, ok := build.lastArgs("RUN")
			if !ok || !staticBuild.MatchString(run.args) {
				t.Fatalf("the build stage's last RUN is not a static, trimmed build: %q", run.args)
			}
			pkg := mainPackage.FindString(run.args)
			if pkg == "" {
				t.Fatalf("the build names no ./cmd/... package: %q", run.args)
			}
			// The monitor's main package is another engineer's; its folder
			// exists from the start, so this check holds meanwhile.
			if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
				t.Errorf("the build's package %s: %v", pkg, err)
			}
			if !strings.HasPrefix(final.from, "alpine:") {
				t.Errorf("final stage FROM %s, want alpine", final.from)
			}
			apk, _ := final.lastArgs("RUN")
			if !strings.Contains(apk.args, "apk add --no-cache ca-certificates") {
				t.Errorf("the final stage does not install CA certificates: %q", apk.args)
			}
			bin := img.cmd[0]
			if cp, ok := final.lastArgs("COPY"); !ok || !strings.HasPrefix(cp.args, "--from="+build.name+" ") || !strings.HasSuffix(cp.args, " "+bin) {
				t.Errorf("the final stage's COPY %q does not copy %s from stage %q", cp.args, bin, build.name)
			}
		})
	}
}

// The engine runs as a non-root user yet reads /root/config.json, where
// the older image read it and docker-compose.yaml mounts it: the image
// must open /root to other users.
func TestEngineImageCanReadRootConfig(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	run, _ := stages[len(stages)-1].lastArgs("RUN")
	if !strings.Contains(run.args, "chmod 0755 /root") {
		t.Errorf("the engine image's final stage does not open /root: %q", run.args)
	}
}
