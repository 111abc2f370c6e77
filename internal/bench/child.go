package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/internal/redisserver"
)

// ChildEnv names the role of a child process of the benchmark command: the
// command runs itself again as the engine under measurement ("engine") and
// as the bare HTTP client it is compared with ("bare"), so that each has a
// process of its own, as in production: its CPU time and memory are its
// alone, and both reach the receiver, in the command's process, across
// processes alike. See RunChild.
const ChildEnv = "SENDHOOKS_BENCH_ROLE"

// Settings of the bare client child.
const (
	bareURLEnv     = "SENDHOOKS_BENCH_URL" // receiver URLs, comma-separated
	bareProxyEnv   = "SENDHOOKS_BENCH_PROXY"
	bareJobsEnv    = "SENDHOOKS_BENCH_JOBS"
	bareWorkersEnv = "SENDHOOKS_BENCH_WORKERS"
)

// RunChild runs the role a child process was started for, until ctx is
// done or its work is.
func RunChild(ctx context.Context, role string) error {
	switch role {
	case "engine":
		return runEngine(ctx)
	case "bare":
		return runBare()
	case "monitor":
		return runMonitor(ctx)
	default:
		return fmt.Errorf("%s=%q: want engine, bare or monitor", ChildEnv, role)
	}
}

// profileEnv names the file an engine child writes its CPU profile to.
const profileEnv = "SENDHOOKS_BENCH_CPUPROFILE"

// runEngine runs the engine configured by SENDHOOKS_* variables, as the
// sendhooks command does, until ctx is done; with a CPU profile of the
// whole run when the benchmark asked for one.
func runEngine(ctx context.Context) error {
	cfg, err := engine.Load("", os.Getenv)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	rdb, err := engine.NewRedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return engine.New(cfg, rdb, log).Run(ctx)
}

// runBare makes the bare client's requests and prints their rate, in
// requests per second, on stdout.
func runBare() error {
	n, err := strconv.Atoi(os.Getenv(bareJobsEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", bareJobsEnv, err)
	}
	workers, err := strconv.Atoi(os.Getenv(bareWorkersEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", bareWorkersEnv, err)
	}
	rate, err := bareClient(strings.Split(os.Getenv(bareURLEnv), ","), os.Getenv(bareProxyEnv), n, workers)
	if err != nil {
		return err
	}
	_, err = fmt.Println(rate)
	return err
}

// runBareChild runs the bare client in a child process and returns its
// rate: n requests spread evenly over urls, through proxy unless it is "".
func runBareChild(ctx context.Context, urls []string, proxy string, n, workers int) (float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the benchmark executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), ChildEnv+"=bare", bareURLEnv+"="+strings.Join(urls, ","), bareProxyEnv+"="+proxy,
		bareJobsEnv+"="+strconv.Itoa(n), bareWorkersEnv+"="+strconv.Itoa(workers))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("bare client process: %w", err)
	}
	rate, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("bare client process printed %q: %w", out, err)
	}
	return rate, nil
}

// engineProcess is an engine running in a child process.
type engineProcess struct {
	cmd     *exec.Cmd
	metrics string        // the child's metrics address
	done    chan struct{} // closed once the child has exited
	exitErr error         // how it exited; read after done
}

// engineSetup is what one engine run works on.
type engineSetup struct {
	redis   string // address
	proxy   string // the engine's HTTP_PROXY; "" for none
	profile string // CPU profile file of the engine; "" for none
}

// benchSettings are the only settings the benchmark gives the engine; the
// engine takes its defaults for everything else, as a user who writes no
// config file gets them. Each is there because the benchmark cannot run
// without it, and none changes how fast a delivery is made.
var benchSettings = []struct{ name, why string }{
	{"SENDHOOKS_REDIS_ADDRESS", "the benchmark's Redis"},
	// The SSRF guard refuses loopback receivers by default.
	{"SENDHOOKS_ALLOW_PRIVATE_NETWORKS", "receivers on loopback"},
	// The benchmark reads readiness and the allocation count from it.
	{"SENDHOOKS_METRICS_ADDRESS", "readiness, allocations"},
}

// engineEnv is the engine child's environment: the command's own without
// any SENDHOOKS_ setting or proxy variable, so that the engine runs on its
// defaults whatever the shell that started the benchmark says, then
// benchSettings, then HTTP_PROXY when s names a proxy.
func engineEnv(s engineSetup, metrics string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD":
			continue
		}
		if !strings.HasPrefix(k, "SENDHOOKS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		ChildEnv+"=engine",
		"SENDHOOKS_REDIS_ADDRESS="+s.redis,
		"SENDHOOKS_ALLOW_PRIVATE_NETWORKS=true",
		"SENDHOOKS_METRICS_ADDRESS="+metrics,
	)
	if s.proxy != "" {
		env = append(env, "HTTP_PROXY="+s.proxy)
	}
	if s.profile != "" {
		env = append(env, profileEnv+"="+s.profile)
	}
	return env
}

// engineConfig is the configuration the engine child runs with, loaded as
// the child loads it.
func engineConfig(s engineSetup) (engine.Config, error) {
	env := map[string]string{}
	for _, kv := range engineEnv(s, "127.0.0.1:0") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := engine.Load("", func(k string) string { return env[k] })
	if err != nil {
		return cfg, fmt.Errorf("the engine's configuration: %w", err)
	}
	return cfg, nil
}

// startEngine starts the engine child and waits until it reports ready.
func startEngine(ctx context.Context, s engineSetup) (*engineProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the benchmark executable: %w", err)
	}
	port, err := redisserver.FreePort()
	if err != nil {
		return nil, err
	}
	p := &engineProcess{metrics: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	p.cmd = exec.Command(exe)
	p.cmd.Env = engineEnv(s, p.metrics)
	p.cmd.Stderr = os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the engine process: %w", err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	if err := p.waitReady(ctx); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

func (p *engineProcess) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("the engine process exited before it was ready: %v", p.exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engine process was not ready within 30s")
		}
	}
}

// stop sends SIGTERM, as a deployment would, and waits for a clean exit.
func (p *engineProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.exitErr != nil {
			return fmt.Errorf("the engine process did not exit cleanly: %w", p.exitErr)
		}
		return nil
	case <-time.After(time.Minute):
		p.kill()
		return fmt.Errorf("the engine process did not stop within a minute of SIGTERM")
	}
}

// kill ends the child at once, if it is still running, and waits for it.
func (p *engineProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// procStats is a process's CPU time and memory, from /proc.
type procStats struct {
	cpu     time.Duration
	rss     int64 // resident set now, bytes
	peakRSS int64 // high-water mark of the resident set, bytes
}

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ), 100 on
// every Linux this runs on.
const clockTick = 10 * time.Millisecond

func readProcStats(pid int) (procStats, error) {
	var st procStats
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("read the engine's CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return st, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, raw)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return st, fmt.Errorf("CPU times in /proc/%d/stat: %w", pid, err)
	}
	st.cpu = time.Duration(utime+stime) * clockTick

	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("read the engine's memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			st.rss = kb << 10
		case "VmHWM":
			st.peakRSS = kb << 10
		}
	}
	return st, sc.Err()
}

// mallocs is the engine's count of heap allocations so far, from its
// metrics endpoint.
func (p *engineProcess) mallocs() (float64, error) {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("read the engine's metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read the engine's metrics: %w", err)
	}
	return 0, fmt.Errorf("the engine's metrics have no go_memstats_mallocs_total")
}

// startProfile starts a CPU profile of the child into the file the
// benchmark names in profileEnv, if any; stop ends and writes it.
func startProfile() (stop func(), err error) {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
