// Package redistest starts real redis-server processes for tests.
//
// Sendhooks tests talk to a real Redis, never to a mock, because the
// guarantees under test (consumer groups, pending entries, persistence across
// a crash) are exactly what a mock gets subtly wrong. Each call to Start runs
// its own redis-server on a free loopback port with its own temporary
// directory and an append-only file synced on every write, so a test can
// kill -9 the server, restart it on the same address and find every
// acknowledged write again.
//
// The helper needs the redis-server binary on PATH; on Debian or Ubuntu:
//
//	apt-get update && apt-get install -y redis-server
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks/internal/redisserver"
)

const (
	// readyTimeout bounds how long Start and Restart wait for the server to
	// answer PING and finish loading its data.
	readyTimeout = 10 * time.Second
	// stopTimeout is how long cleanup waits after SIGTERM before SIGKILL.
	stopTimeout = 5 * time.Second
	// startAttempts is how many free ports Start tries: between closing the
	// probe listener and redis-server binding, another process may take it.
	startAttempts = 5
	// pollInterval is the pause between readiness probes.
	pollInterval = 20 * time.Millisecond
	// probeTimeout bounds one readiness probe; a local redis-server answers
	// in well under a millisecond, and a slow probe is simply retried.
	probeTimeout = 500 * time.Millisecond

	logName = "redis.log" // redis-server's own log file, in the data dir
	outName = "redis.out" // stdout and stderr, for errors before the log opens
)

// errAddrInUse reports that redis-server exited because its port was taken.
var errAddrInUse = errors.New("address already in use")

// Server is one redis-server process owned by a test. Its methods are safe
// for concurrent use; t.Parallel tests each start their own Server.
type Server struct {
	bin string // absolute path of redis-server
	dir string // data directory: AOF files and logs live here

	mu sync.Mutex
	// port is written only by Start, before the Server is returned, so
	// Addr may read it without the lock.
	port int
	proc *process // the current process, nil before the first launch
}

// process is one run of redis-server. done is closed by the goroutine that
// waits for the process, after it has stored the exit error in err.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start runs a new redis-server for t on a free loopback port, with its own
// temporary data directory, and waits until it answers PING. The server is stopped when t's cleanup runs, and its
// log is written to t's output if t failed. Like t.Fatal, Start must be
// called from the goroutine running the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (%v); tests need a real Redis: "+
			"install it with `sudo apt-get update && sudo apt-get install -y redis-server` "+
			"(Debian/Ubuntu) or `brew install redis` (macOS)", err)
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	// Registered after t.TempDir, so it runs before the directory is
	// removed: redis-server must be gone before its files are.
	t.Cleanup(func() { s.cleanup(t) })

	for attempt := 1; ; attempt++ {
		port, err := redisserver.FreePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.mu.Lock()
		s.port = port
		err = s.launchLocked()
		s.mu.Unlock()
		if err == nil {
			return s
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			t.Fatalf("redistest: start redis-server (attempt %d): %v\n%s", attempt, err, s.logs())
		}
		t.Logf("redistest: port %d was taken before redis-server bound it, trying another", port)
	}
}

// Addr returns the server's address, "127.0.0.1:PORT". It stays the same
// across Kill and Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Client returns a new go-redis client for the server, closed when t's
// cleanup runs. The client survives Kill and Restart: go-redis drops broken
// connections and dials again.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("redistest: close client: %v", err)
		}
	})
	return c
}

// Kill sends SIGKILL to the server, as a crash would, and waits for the
// process to exit. Writes acknowledged before Kill are on disk (appendfsync
// always) and come back with Restart. Killing a stopped server does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.killLocked(); err != nil {
		t.Fatalf("redistest: kill redis-server on %s: %v", s.Addr(), err)
	}
}

// Restart starts the server again on the same port and data directory, so
// it reloads everything from its append-only file, and waits until it
// answers PING and has finished loading. A server still running is killed
// first (SIGKILL), so Restart alone simulates a crash and a restart.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.killLocked(); err != nil {
		t.Fatalf("redistest: kill redis-server on %s before restart: %v", s.Addr(), err)
	}
	// The port cannot be changed, so instead of picking another one, wait
	// for a short-lived socket that happens to hold it (an outgoing
	// connection's ephemeral port, say) to go away.
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.launchLocked()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("redistest: restart redis-server on %s: %v\n%s", s.Addr(), err, s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// launchLocked starts redis-server on s.port and waits until it is ready.
// On failure no process is left running. It returns an error wrapping
// errAddrInUse if redis-server could not bind the port. s.mu must be held.
func (s *Server) launchLocked() error {
	port := s.port
	logPath := filepath.Join(s.dir, logName)
	// The log is appended to across restarts; remember where this run
	// starts so a bind failure is judged on this run's lines only.
	var logOffset int64
	if fi, err := os.Stat(logPath); err == nil {
		logOffset = fi.Size()
	}

	out, err := os.OpenFile(filepath.Join(s.dir, outName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open output file: %w", err)
	}
	// The child gets its own copy of the descriptor, so ours can go as soon
	// as it has started; passing an *os.File also means exec needs no
	// goroutine to copy the output.
	defer out.Close()

	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", logPath,
		// Every acknowledged write is fsynced before the reply, so SIGKILL
		// loses nothing a test was told is stored.
		"--appendonly", "yes",
		"--appendfsync", "always",
		// No RDB snapshots: the AOF is the single source of truth, and
		// background saves would only add nondeterminism.
		"--save", "",
	)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("run %s: %w", s.bin, err)
	}

	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		// Owned by p: every path that drops p waits on p.done first.
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.proc = p

	if err := waitReady(p, s.Addr()); err != nil {
		if kerr := s.killLocked(); kerr != nil {
			err = errors.Join(err, kerr)
		}
		if logSince(logPath, logOffset, "Address already in use") {
			err = fmt.Errorf("port %d: %w: %w", port, errAddrInUse, err)
		}
		return err
	}
	return nil
}

// killLocked sends SIGKILL to the current process, if any is running, and
// waits for it to exit. s.mu must be held.
func (s *Server) killLocked() error {
	p := s.proc
	if p == nil || p.exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send SIGKILL to pid %d: %w", p.cmd.Process.Pid, err)
	}
	<-p.done
	return nil
}

// cleanup stops the server gracefully (SIGTERM, then SIGKILL after
// stopTimeout) and, if t failed, writes the server's log to t's output.
func (s *Server) cleanup(t testing.TB) {
	s.mu.Lock()
	p := s.proc
	if p != nil && !p.exited() {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("redistest: send SIGTERM to redis-server pid %d: %v", p.cmd.Process.Pid, err)
		}
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			t.Errorf("redistest: redis-server on %s did not exit %v after SIGTERM; killing it", s.Addr(), stopTimeout)
			if err := s.killLocked(); err != nil {
				t.Errorf("redistest: %v", err)
			}
		}
	}
	s.mu.Unlock()
	if t.Failed() {
		t.Logf("redistest: redis-server on %s, data dir %s:\n%s", s.Addr(), s.dir, s.logs())
	}
}

// logs returns the server's log and any output it wrote before opening
// the log, for failure messages.
func (s *Server) logs() string {
	var b strings.Builder
	for _, name := range []string{logName, outName} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			fmt.Fprintf(&b, "--- %s: %v\n", name, err)
		case len(bytes.TrimSpace(data)) > 0:
			fmt.Fprintf(&b, "--- %s:\n%s\n", name, bytes.TrimRight(data, "\n"))
		}
	}
	if b.Len() == 0 {
		return "(redis-server wrote no output)"
	}
	return b.String()
}

// waitReady polls addr until the server answers PING and reports that it
// has finished loading its data, the process exits, or readyTimeout passes.
func waitReady(p *process, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		if lastErr = probe(ctx, addr, p.cmd.Process.Pid); lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited before it was ready (%v); last probe: %w", p.err, lastErr)
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s not ready after %v: %w", addr, readyTimeout, lastErr)
		case <-ticker.C:
		}
	}
}

// probe returns nil if the redis-server with process id pid answers PING on
// addr and is not loading data. Checking the pid matters: when our server
// loses the race for a port, whatever took it (perhaps another test's
// redis-server) answers instead, and must not pass for ours.
//
// It speaks RESP over a plain connection rather than using go-redis: after
// failed dials a go-redis pool waits up to a second before dialing again
// and leaves a background dialer behind, which would slow every Restart and
// outlive the probe.
func probe(ctx context.Context, addr string, pid int) error {
	conn, err := (&net.Dialer{Timeout: probeTimeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	// Short, so a listener that is not ours and never answers costs little.
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	// Inline commands, pipelined: the replies come back in order.
	if _, err := io.WriteString(conn, "PING\r\nINFO server persistence\r\n"); err != nil {
		return fmt.Errorf("send PING and INFO: %w", err)
	}
	r := bufio.NewReader(conn)

	line, err := readLine(r)
	if err != nil {
		return fmt.Errorf("read PING reply: %w", err)
	}
	if line != "+PONG" {
		return fmt.Errorf("PING replied %q", line) // -LOADING while loading
	}

	line, err = readLine(r)
	if err != nil {
		return fmt.Errorf("read INFO reply: %w", err)
	}
	size, ok := strings.CutPrefix(line, "$")
	if !ok {
		return fmt.Errorf("INFO replied %q", line)
	}
	n, err := strconv.Atoi(size)
	if err != nil || n < 0 {
		return fmt.Errorf("INFO replied with a bad length %q", line)
	}
	body := make([]byte, n+2) // the bulk string and its CRLF
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("read INFO reply: %w", err)
	}
	info := map[string]string{}
	for l := range strings.Lines(string(body[:n])) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			info[k] = v
		}
	}
	if got := info["process_id"]; got != strconv.Itoa(pid) {
		return fmt.Errorf("%s is answered by process %q, not by our redis-server (pid %d)", addr, got, pid)
	}
	if got := info["loading"]; got != "0" {
		return fmt.Errorf("INFO persistence says loading:%q, want 0", got)
	}
	return nil
}

// readLine reads one RESP line and returns it without its CRLF.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// logSince reports whether the file at path contains substr after offset.
func logSince(path string, offset int64, substr string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<30))
	if err != nil {
		return false
	}
	return bytes.Contains(data, []byte(substr))
}

// sysProcAttr asks the kernel to SIGKILL redis-server when its parent dies,
// so a test binary that crashes or times out does not leak servers. The
// field exists on Linux (where tests run) and FreeBSD only; it is set through
// reflection so the package still compiles elsewhere, where the servers are
// then stopped only by cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
	return attr
}

// The parent-death signal fires when the *thread* that forked the child
// exits, not the process (https://go.dev/issue/27505), and the Go runtime
// ends a thread whenever a goroutine exits while locked to it. So every
// redis-server is forked from one goroutine locked to its own thread for the
// life of the test binary: that thread never exits before the process does.
// This goroutine is the one deliberately process-lifetime goroutine here.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// spawn starts cmd from the dedicated spawning thread.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: see above
			for r := range spawnReqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}
