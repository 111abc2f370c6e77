package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/stores"
	"github.com/sendhooks/sendhooks/web"
)

// monitorEnvVar holds, for a monitor child, its environment as a JSON
// object: the variables sendhooks-monitor reads, and only those, so that
// whatever the benchmark's own environment holds the monitor runs with
// its defaults but for the ones set there.
const monitorEnvVar = "SENDHOOKS_BENCH_MONITOR_ENV"

// runMonitor runs the monitor as sendhooks-monitor does, with its
// configuration from monitorEnvVar, its API and dashboard on loopback
// ports it prints on stdout ("<api address> <dashboard address>"), until
// ctx is done; with a CPU profile of the whole run when
// SENDHOOKS_BENCH_CPUPROFILE names a file.
func runMonitor(ctx context.Context) error {
	var env map[string]string
	if err := json.Unmarshal([]byte(os.Getenv(monitorEnvVar)), &env); err != nil {
		return fmt.Errorf("%s: %w", monitorEnvVar, err)
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := monitor.LoadConfig(getenv)
	if err != nil {
		return err
	}
	dash, err := web.LoadDashboardConfig(getenv)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	dash.Logger = log
	store, err := stores.Open(cfg)
	if err != nil {
		return err
	}
	svc := monitor.New(cfg, store, log)
	api, dashboard := web.ForService(svc, web.APIConfig{Logger: log}, dash)
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	dashLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		apiLn.Close()
		return err
	}
	if _, err := fmt.Printf("%s %s\n", apiLn.Addr(), dashLn.Addr()); err != nil {
		return err
	}
	return svc.Serve(ctx, monitor.Listener{Name: "api", Listener: apiLn, Handler: api},
		monitor.Listener{Name: "dashboard", Listener: dashLn, Handler: dashboard})
}

// monitorProcess is the monitor running in a child process.
type monitorProcess struct {
	cmd       *exec.Cmd
	api, dash string // base URLs
	stderr    *tailWriter
	done      chan struct{} // closed once the child has exited
	exitErr   error         // how it exited; read after done
	client    *http.Client
}

// startMonitor starts the monitor child with env as its environment
// (see monitorEnvVar) and waits until it is ready.
func startMonitor(ctx context.Context, env map[string]string, out io.Writer) (*monitorProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the benchmark executable: %w", err)
	}
	raw, _ := json.Marshal(env) // a map of strings always encodes
	p := &monitorProcess{done: make(chan struct{}), stderr: &tailWriter{w: out}, client: &http.Client{Timeout: 10 * time.Second}}
	p.cmd = exec.Command(exe)
	p.cmd.Env = append(os.Environ(), ChildEnv+"=monitor", monitorEnvVar+"="+string(raw))
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the monitor process: %w", err)
	}
	addrs := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addrs <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	select {
	case line := <-addrs:
		api, dash, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			<-p.done
			return nil, fmt.Errorf("the monitor process did not start: %v: %s", p.exitErr, p.stderr.tail())
		}
		p.api, p.dash = "http://"+api, "http://"+dash
	case <-deadline.C:
		p.kill()
		return nil, fmt.Errorf("the monitor process printed no address within a minute")
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	if err := p.waitReady(ctx, deadline.C); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// waitReady polls /readyz until it answers 200.
func (p *monitorProcess) waitReady(ctx context.Context, deadline <-chan time.Time) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := p.client.Get(p.api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("the monitor process exited before it was ready: %v: %s", p.exitErr, p.stderr.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the monitor process was not ready within a minute: %s", p.stderr.tail())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, as a deployment would, and waits for a clean exit.
func (p *monitorProcess) stop() error {
	p.client.CloseIdleConnections()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-p.done:
		if p.exitErr != nil {
			return fmt.Errorf("the monitor process did not exit cleanly: %w: %s", p.exitErr, p.stderr.tail())
		}
		return nil
	case <-t.C:
		p.kill()
		return fmt.Errorf("the monitor process did not stop within a minute of SIGTERM")
	}
}

// kill ends the child at once, if it is still running, and waits for it.
func (p *monitorProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// monitorCounts are the monitor's ingestion counters.
type monitorCounts struct {
	ingested, parseFailures, writeFailures int
}

// counters reads the monitor's counters from its metrics endpoint.
func (p *monitorProcess) counters(ctx context.Context) (monitorCounts, error) {
	var c monitorCounts
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.api+"/metrics", nil)
	if err != nil {
		return c, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return c, fmt.Errorf("read the monitor's metrics: %w", err)
	}
	defer resp.Body.Close()
	want := map[string]*int{
		"sendhooks_monitor_events_ingested_total":      &c.ingested,
		"sendhooks_monitor_event_parse_failures_total": &c.parseFailures,
		"sendhooks_monitor_write_failures_total":       &c.writeFailures,
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if dst := want[name]; ok && dst != nil {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return c, fmt.Errorf("the monitor's metric %s is %q", name, v)
			}
			*dst = int(f)
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("read the monitor's metrics: %w", err)
	}
	if found != len(want) {
		return c, fmt.Errorf("the monitor's metrics lack some of its ingestion counters (%d of %d found)", found, len(want))
	}
	return c, nil
}

// tailWriter passes what is written on to w and keeps the last 4 KiB of
// it, for error messages.
type tailWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4<<10 {
		t.buf = t.buf[len(t.buf)-4<<10:]
	}
	return t.w.Write(p)
}

func (t *tailWriter) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
