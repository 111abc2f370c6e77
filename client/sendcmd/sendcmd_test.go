package sendcmd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks/client/sendcmd"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// run runs the command with args, stdin and the environment env, and
// returns what it printed.
func run(t *testing.T, args []string, stdin string, env map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := sendcmd.Command{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string { return env[k] },
	}
	err = cmd.Run(context.Background(), args)
	return out.String(), errOut.String(), err
}

// emptyConfig writes a config file that leaves everything at its default,
// so that no ./config.json or /root/config.json on the machine is read.
func emptyConfig(t *testing.T) string {
	t.Helper()
	return writeFile(t, "config.json", `{}`)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// onlyEntry returns the data field of the single entry of stream, failing
// the test unless the stream holds exactly one entry with that id.
func onlyEntry(t *testing.T, rdb *redis.Client, stream, id string) any {
	t.Helper()
	entries, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", stream, err)
	}
	if len(entries) != 1 || entries[0].ID != id || len(entries[0].Values) != 1 {
		t.Fatalf("stream %s = %v, want one entry %q with one field", stream, entries, id)
	}
	return entries[0].Values["data"]
}

func TestSendFromFieldFlags(t *testing.T) {
	srv := redistest.Start(t)
	stdout, stderr, err := run(t, []string{
		"-config", emptyConfig(t), "-redis", srv.Addr(),
		"-url", "http://127.0.0.1:8080/hook", "-data", `{"order": 42}`, "-webhook-id", "order-42",
		"-message-id", "m-1", "-secret", "s3cret", "-meta", `{"tenant":7}`,
	}, "", nil)
	if err != nil {
		t.Fatalf("send: %v (stderr %q)", err, stderr)
	}
	id := strings.TrimSuffix(stdout, "\n")
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("stdout = %q, want one stream id line", stdout)
	}
	want := `{"url":"http://127.0.0.1:8080/hook","webhookId":"order-42","messageId":"m-1","data":{"order": 42},"secretHash":"s3cret","metaData":{"tenant":7}}`
	if got := onlyEntry(t, srv.Client(t), "hooks", id); got != want {
		t.Errorf("data = %v,\nwant %s", got, want)
	}
}

func TestSendJobFromStdinToAnotherStream(t *testing.T) {
	srv := redistest.Start(t)
	stdout, _, err := run(t, []string{"-config", emptyConfig(t), "-redis", srv.Addr(), "-stream", "other", "-job", "-"},
		`{"URL": "https://127.0.0.1/in", "data": [1, 2], "extra": "ignored"}`+"\n", nil)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	rdb := srv.Client(t)
	if got := onlyEntry(t, rdb, "other", strings.TrimSpace(stdout)); got != `{"url":"https://127.0.0.1/in","data":[1, 2]}` {
		t.Errorf("data = %v", got)
	}
	if n, err := rdb.Exists(context.Background(), "hooks").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS hooks = %d, %v; want 0", n, err)
	}
}

func TestSendJobFromFile(t *testing.T) {
	srv := redistest.Start(t)
	file := writeFile(t, "job.json", `{"url":"http://127.0.0.1:9/x","webhookId":"w-1"}`)
	stdout, _, err := run(t, []string{"-config", emptyConfig(t), "-redis", srv.Addr(), "-job", file}, "", nil)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := onlyEntry(t, srv.Client(t), "hooks", strings.TrimSpace(stdout)); got != `{"url":"http://127.0.0.1:9/x","webhookId":"w-1"}` {
		t.Errorf("data = %v", got)
	}
}

// Without -redis and -stream the command goes where the engine would: the
// config file, then the SENDHOOKS_* environment.
func TestSendFollowsEngineConfigAndEnvironment(t *testing.T) {
	srv := redistest.Start(t)
	cfg := writeFile(t, "config.json", `{"redisAddress": "`+srv.Addr()+`", "redisStreamName": "from-file"}`)
	stdout, _, err := run(t, []string{"-config", cfg, "-url", "http://127.0.0.1/x"}, "",
		map[string]string{"SENDHOOKS_REDIS_STREAM_NAME": "from-env"})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := onlyEntry(t, srv.Client(t), "from-env", strings.TrimSpace(stdout)); got != `{"url":"http://127.0.0.1/x"}` {
		t.Errorf("data = %v", got)
	}
}

func TestSendRefusesBadInputAndWritesNothing(t *testing.T) {
	srv := redistest.Start(t)
	cfg := emptyConfig(t)
	badFile := writeFile(t, "job.json", `{"webhookId":"w"}`)
	base := []string{"-config", cfg, "-redis", srv.Addr()}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no job", nil, "send: give the job with -url (and -data, ...) or as JSON with -job FILE|-"},
		{"ftp url", []string{"-url", "ftp://127.0.0.1/x"}, `send: bad job: the url "ftp://127.0.0.1/x" is not http or https`},
		{"data not json", []string{"-url", "http://127.0.0.1/x", "-data", "order=42"}, `send: bad job: the job's "data" is not valid JSON: "order=42"`},
		{"meta not json", []string{"-url", "http://127.0.0.1/x", "-meta", "{"}, `send: bad job: the job's "metaData" is not valid JSON: "{"`},
		{"job and fields", []string{"-job", "-", "-url", "http://127.0.0.1/x", "-secret", "k"}, "send: -job gives the whole job; it cannot be combined with -url, -secret"},
		{"job file without url", []string{"-job", badFile}, "send: -job " + badFile + `: bad job: the job has no "url"`},
		{"job file missing", []string{"-job", badFile + ".nope"}, "send: -job: open " + badFile + ".nope: no such file or directory"},
		{"stray argument", []string{"-url", "http://127.0.0.1/x", "extra"}, `send: unexpected argument "extra" (flags come before it? see sendhooks send -h)`},
		{"unknown flag", []string{"-uri", "http://127.0.0.1/x"}, "send: flag provided but not defined: -uri"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := run(t, append(append([]string(nil), base...), tt.args...), "", nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v,\nwant    %s", err, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	if n, err := srv.Client(t).DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE = %d, %v; want 0: nothing may be written", n, err)
	}
}

func TestSendReportsUnreachableRedis(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill(t)
	_, _, err := run(t, []string{"-config", emptyConfig(t), "-redis", srv.Addr(), "-url", "http://127.0.0.1/x"}, "", nil)
	prefix := "send: redis " + srv.Addr() + `: send job to stream "hooks": `
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error = %v, want one starting with %q", err, prefix)
	}
}

func TestSendHelpPrintsUsage(t *testing.T) {
	stdout, stderr, err := run(t, []string{"-h"}, "", nil)
	if err != nil || stdout != "" {
		t.Fatalf("send -h = %v, stdout %q; want no error and no output", err, stdout)
	}
	if !strings.HasPrefix(stderr, "usage: sendhooks send -url URL") || !strings.Contains(stderr, "-job FILE") {
		t.Errorf("usage = %q", stderr)
	}
}
