package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartSetGet(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", s.Addr())
	}
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := c.Get(ctx, "greeting").Result()
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if got != "hello" {
		t.Fatalf("GET greeting = %q, want %q", got, "hello")
	}
}

// TestDataSurvivesKillAndRestart writes, crashes the server with SIGKILL and
// restarts it, several times over, and checks every acknowledged write is
// back exactly: the property the engine's at-least-once tests rely on.
func TestDataSurvivesKillAndRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()

	var wantStream []redis.XMessage
	var wantZSet []redis.Z
	for round := range 3 {
		for i := range 3 {
			values := map[string]any{"data": fmt.Sprintf(`{"round":%d,"i":%d}`, round, i)}
			id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: "hooks", Values: values}).Result()
			if err != nil {
				t.Fatalf("round %d: XADD: %v", round, err)
			}
			wantStream = append(wantStream, redis.XMessage{ID: id, Values: values})
		}
		z := redis.Z{Score: float64(100 + round), Member: fmt.Sprintf("retry-%d", round)}
		if err := c.ZAdd(ctx, "retries", z).Err(); err != nil {
			t.Fatalf("round %d: ZADD: %v", round, err)
		}
		wantZSet = append(wantZSet, z)

		s.Kill(t)
		s.Restart(t)

		gotStream, err := c.XRange(ctx, "hooks", "-", "+").Result()
		if err != nil {
			t.Fatalf("round %d: XRANGE after restart: %v", round, err)
		}
		if !reflect.DeepEqual(gotStream, wantStream) {
			t.Fatalf("round %d: stream after restart:\n got %v\nwant %v", round, gotStream, wantStream)
		}
		gotZSet, err := c.ZRangeWithScores(ctx, "retries", 0, -1).Result()
		if err != nil {
			t.Fatalf("round %d: ZRANGE after restart: %v", round, err)
		}
		if !reflect.DeepEqual(gotZSet, wantZSet) {
			t.Fatalf("round %d: sorted set after restart:\n got %v\nwant %v", round, gotZSet, wantZSet)
		}
	}
}

func TestParallelServersAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share the address %s", a.Addr())
	}
	ctx := t.Context()
	if err := a.Client(t).Set(ctx, "only-in-a", "1", 0).Err(); err != nil {
		t.Fatalf("SET on a: %v", err)
	}
	if err := b.Client(t).Get(ctx, "only-in-a").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET on b of a key written to a: err = %v, want redis.Nil", err)
	}
}

// TestManyServersInParallel starts servers concurrently from parallel
// subtests, which is how the rest of the module uses the package.
func TestManyServersInParallel(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			c := Start(t).Client(t)
			ctx := t.Context()
			if err := c.Set(ctx, "owner", t.Name(), 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			if got, err := c.Get(ctx, "owner").Result(); err != nil || got != t.Name() {
				t.Fatalf("GET owner = %q, %v; want %q", got, err, t.Name())
			}
		})
	}
}

func TestClientReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	s.Kill(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING to a killed server succeeded, want a connection error")
	}
	s.Kill(t) // killing a stopped server is a no-op

	s.Restart(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart with the same client: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k after restart = %q, %v; want %q", got, err, "v")
	}
}

// TestRestartWhileRunning checks that Restart on a live server kills it
// first instead of failing to bind the port it still holds.
func TestRestartWhileRunning(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Restart(t)
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k after restart = %q, %v; want %q", got, err, "v")
	}
}

// TestLaunchReportsTakenPort checks the detection Start's port retry
// depends on: a taken port gives errAddrInUse and leaves no process, even
// when what holds the port is another redis-server that answers PING.
func TestLaunchReportsTakenPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	other := Start(t)

	holders := map[string]int{
		"plain listener": l.Addr().(*net.TCPAddr).Port,
		"redis-server":   other.port,
	}
	for name, port := range holders {
		t.Run(name, func(t *testing.T) {
			s := Start(t)
			s.Kill(t)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.port = port
			err := s.launchLocked()
			if !errors.Is(err, errAddrInUse) {
				t.Fatalf("launch on a port held by a %s: err = %v, want errAddrInUse", name, err)
			}
			if !s.proc.exited() {
				t.Fatal("launch on a taken port left a process running")
			}
		})
	}
}

// helperEnv makes the test binary run TestHelper as a child process for
// the tests below; its value picks what the child does.
const helperEnv = "REDISTEST_HELPER"

// TestHelper is not a real test. With helperEnv=parent it starts a server,
// prints its address and blocks until it is killed; with helperEnv=fail it
// starts a server and fails, so cleanup dumps the server log.
func TestHelper(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "parent":
		s := Start(t)
		fmt.Printf("addr=%s\n", s.Addr())
		select {}
	case "fail":
		Start(t)
		t.Error("failing on purpose")
	default:
		t.Skip("helper process for other tests in this package")
	}
}

// runHelper runs TestHelper in a child test binary in the given mode.
func runHelper(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelper$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	return cmd
}

// TestMissingRedisServerFails checks that a machine without redis-server
// fails tests with install instructions instead of skipping them.
func TestMissingRedisServerFails(t *testing.T) {
	t.Parallel()
	out, err := runHelper("fail", "PATH="+t.TempDir()).CombinedOutput()
	if err == nil {
		t.Fatalf("helper passed without redis-server on PATH; output:\n%s", out)
	}
	if !strings.Contains(string(out), "apt-get install -y redis-server") {
		t.Fatalf("output lacks install instructions:\n%s", out)
	}
}

// TestFailedTestDumpsLog checks that a failed test shows the server log.
func TestFailedTestDumpsLog(t *testing.T) {
	t.Parallel()
	out, err := runHelper("fail").CombinedOutput()
	if err == nil {
		t.Fatalf("helper passed, want failure; output:\n%s", out)
	}
	for _, want := range []string{"failing on purpose", "--- redis.log:", "Ready to accept connections"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestServerDiesWithParent kills a test binary holding a server with
// SIGKILL, so no cleanup runs, and checks the server goes down with it.
func TestServerDiesWithParent(t *testing.T) {
	t.Parallel()
	cmd := runHelper("parent")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	addr := make(chan string, 1)
	go func() {
		// Drain all output, so the helper never blocks writing it; the
		// pipe closes when the helper exits.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "addr="); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	var a string
	select {
	case got, ok := <-addr:
		if !ok {
			t.Fatal("helper exited without printing the server address")
		}
		a = got
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not print the server address within 30s")
	}
	if err := redis.NewClient(&redis.Options{Addr: a}).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING the helper's server: %v", err)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	_ = cmd.Wait() // the error is the expected "signal: killed"

	// The server's listening socket closes when the kernel kills it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("redis-server on %s still accepts connections 10s after its parent died", a)
			}
			return // refused: the server is gone
		}
		conn.Close()
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
