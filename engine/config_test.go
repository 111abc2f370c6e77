package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
)

// writeConfig writes a config file into a fresh temp dir and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envOf serves getenv from a map.
func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// resolvedDefault is what Load returns with no file and no environment.
func resolvedDefault(t *testing.T) Config {
	t.Helper()
	c, err := Default().Resolve()
	if err != nil {
		t.Fatalf("Default().Resolve(): %v", err)
	}
	return c
}

func TestLoadConfigDefaultsWithoutFile(t *testing.T) {
	t.Parallel()
	got, err := Load("", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "sendhooks"
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"redisAddress", got.Redis, RedisConfig{Address: "127.0.0.1:6379"}},
		{"redisStreamName", got.JobStream, "hooks"},
		{"redisStreamStatusName", got.StatusStream, "hooks-status"},
		{"consumerGroup", got.ConsumerGroup, "sendhooks"},
		{"consumerName", got.ConsumerName, host},
		{"numWorkers", got.NumWorkers, 256},
		{"channelSize", got.BatchSize, 128},
		{"maxPerHost", got.MaxPerHost, 0},
		{"requestTimeout", got.RequestTimeout, 15 * time.Second},
		{"retrySchedule", fmt.Sprint(got.RetrySchedule), "[5s 5m0s 30m0s 2h0m0s 5h0m0s 10h0m0s 10h0m0s]"},
		{"visibilityTimeout", got.VisibilityTimeout, 2 * time.Minute},
		{"shutdownTimeout", got.ShutdownTimeout, 30 * time.Second},
		{"allowPrivateNetworks", got.AllowPrivateNetworks, false},
		{"secretHashHeaderName", got.SecretHashHeaderName, "X-Secret-Hash"},
		{"sendSecretHashHeader", got.SendSecretHashHeader, true},
		{"metricsAddress", got.MetricsAddress, ""},
		{"logLevel", got.LogLevel, "info"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.key, c.got, c.want)
		}
	}
	if nilEnv, err := Load("", nil); err != nil || !reflect.DeepEqual(nilEnv, got) {
		t.Errorf("Load(\"\", nil) = %+v, %v; want the defaults", nilEnv, err)
	}
}

func TestLoadConfigFileShapes(t *testing.T) {
	t.Parallel()
	article := func(c *Config) {
		c.Redis.Address = "redis:6379"
	}
	tests := []struct {
		name string
		file string
		want func(*Config) // changes from the resolved defaults
	}{
		{
			name: "article flat file",
			file: `{
"redisAddress": "redis:6379",
"redisPassword": "",
"redisDb": "0",
"redisSsl": "false",
"redisStreamName": "hooks",
"redisStreamStatusName": "hooks-status"
}`,
			want: article,
		},
		{
			name: "old nested example, lower case",
			file: `{
  "redis": {
    "redisAddress": "redis:6379",
    "redisPassword": "secret",
    "redisDb": "2",
    "redisSsl": "true",
    "redisCaCert": "/certs/ca.pem",
    "redisClientCert": "/certs/client.pem",
    "redisClientKey": "/certs/client.key",
    "redisStreamName": "example_stream",
    "redisStreamStatusName": "status_stream"
  },
  "secretHashHeaderName": "X-Hook-Secret",
  "broker": "redis",
  "numWorkers": 10,
  "channelSize": 100
}`,
			want: func(c *Config) {
				c.Redis = RedisConfig{Address: "redis:6379", Password: "secret", DB: 2, TLS: true,
					CACert: "/certs/ca.pem", ClientCert: "/certs/client.pem", ClientKey: "/certs/client.key"}
				c.JobStream, c.StatusStream = "example_stream", "status_stream"
				c.SecretHashHeaderName = "X-Hook-Secret"
				c.NumWorkers, c.BatchSize = 10, 100
			},
		},
		{
			// The older engine's config-example.json, as shipped: capitalised
			// keys (encoding/json matched them), TLS paths with TLS off.
			name: "old nested example, as shipped",
			file: `{
  "Redis": {
    "redisAddress": "127.0.0.1:6379",
    "redisPassword": "your_password_here",
    "redisDb": "0",
    "redisSsl": "false",
    "redisCaCert": "/path/to/ca_cert.pem",
    "redisClientCert": "/path/to/client_cert.pem",
    "redisClientKey": "/path/to/client_key.pem",
    "redisStreamName": "example_stream",
    "redisStreamStatusName": "status_stream"
  },
  "SecretHashHeaderName": "dump_value",
  "Broker": "redis",
  "NumWorkers": 1,
  "ChannelSize": 1
}`,
			want: func(c *Config) {
				c.Redis = RedisConfig{Address: "127.0.0.1:6379", Password: "your_password_here",
					CACert: "/path/to/ca_cert.pem", ClientCert: "/path/to/client_cert.pem", ClientKey: "/path/to/client_key.pem"}
				c.JobStream, c.StatusStream = "example_stream", "status_stream"
				c.SecretHashHeaderName = "dump_value"
				c.NumWorkers, c.BatchSize = 1, 1
			},
		},
		{
			name: "flat with JSON number and bool for the legacy keys",
			file: `{"redisAddress": "redis:6379", "redisDb": 3, "redisSsl": true}`,
			want: func(c *Config) { article(c); c.Redis.DB = 3; c.Redis.TLS = true },
		},
		{
			name: "legacy empty strings mean the defaults",
			file: "\ufeff" + `{"redisDb": "", "redisSsl": ""}`,
			want: func(*Config) {},
		},
		{
			name: "every new key",
			file: `{
  "redisAddress": "redis:6379",
  "numWorkers": 8, "maxPerHost": 3, "channelSize": 16,
  "requestTimeout": "5s", "retrySchedule": ["1s", "1m"], "visibilityTimeout": "1m",
  "shutdownTimeout": "0s", "allowPrivateNetworks": true,
  "sendSecretHashHeader": false, "secretHashHeaderName": "X-Ignored",
  "metricsAddress": ":9090", "consumerGroup": "g", "consumerName": "n", "logLevel": "debug"
}`,
			want: func(c *Config) {
				article(c)
				c.NumWorkers, c.MaxPerHost, c.BatchSize = 8, 3, 16
				c.RequestTimeout, c.VisibilityTimeout, c.ShutdownTimeout = 5*time.Second, time.Minute, 0
				c.RetrySchedule = []time.Duration{time.Second, time.Minute}
				c.AllowPrivateNetworks = true
				c.SendSecretHashHeader, c.SecretHashHeaderName = false, ""
				c.MetricsAddress, c.ConsumerGroup, c.ConsumerName, c.LogLevel = ":9090", "g", "n", "debug"
			},
		},
		{
			name: "stream caps, flat",
			file: `{"redisAddress": "redis:6379", "statusStreamMaxLen": 5000, "deadLetterMaxLen": 50}`,
			want: func(c *Config) { article(c); c.StatusStreamMaxLen, c.DeadLetterMaxLen = 5000, 50 },
		},
		{
			name: "stream caps, nested",
			file: `{"redis": {"redisAddress": "redis:6379"}, "broker": "redis",
  "StatusStreamMaxLen": 5000, "deadLetterMaxLen": 1}`,
			want: func(c *Config) { article(c); c.StatusStreamMaxLen, c.DeadLetterMaxLen = 5000, 1 },
		},
		{
			name: "empty retry schedule means one attempt",
			file: `{"retrySchedule": []}`,
			want: func(c *Config) { c.RetrySchedule = []time.Duration{} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(writeConfig(t, tt.file), envOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			want := resolvedDefault(t)
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

func TestLoadConfigOlderEmptyStringsMeanTheDefaults(t *testing.T) {
	t.Parallel()
	for name, file := range map[string]string{
		"flat": `{"redisAddress": "", "redisPassword": "", "redisDb": "", "redisSsl": "",
  "redisStreamName": "", "redisStreamStatusName": "", "secretHashHeaderName": ""}`,
		"nested": `{"redis": {"redisAddress": "", "redisDb": "", "redisSsl": "", "redisStreamName": "",
  "redisStreamStatusName": ""}, "secretHashHeaderName": "", "broker": "redis"}`,
	} {
		got, err := Load(writeConfig(t, file), envOf(nil))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if want := resolvedDefault(t); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want the defaults %+v", name, got, want)
		}
	}
	// Keys the older engine did not have keep refusing "".
	_, err := Load(writeConfig(t, `{"redisStreamName": "", "consumerGroup": ""}`), envOf(nil))
	const want = `key "consumerGroup": must not be empty`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf(`consumerGroup "": %v, want an error containing %q`, err, want)
	}
}

func TestLoadConfigEnvOverridesFile(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `{
  "redis": {"redisAddress": "file:6379", "redisDb": "1", "redisStreamName": "file-jobs"},
  "numWorkers": 10, "logLevel": "warn", "metricsAddress": ":1"
}`)
	env := map[string]string{
		"SENDHOOKS_REDIS_ADDRESS":            "env:6380",
		"SENDHOOKS_REDIS_PASSWORD":           "pw",
		"SENDHOOKS_REDIS_DB":                 "4",
		"SENDHOOKS_REDIS_SSL":                "true",
		"SENDHOOKS_REDIS_CA_CERT":            "/ca.pem",
		"SENDHOOKS_REDIS_CLIENT_CERT":        "/c.pem",
		"SENDHOOKS_REDIS_CLIENT_KEY":         "/c.key",
		"SENDHOOKS_REDIS_STREAM_NAME":        "env-jobs",
		"SENDHOOKS_REDIS_STREAM_STATUS_NAME": "env-status",
		"SENDHOOKS_NUM_WORKERS":              "20",
		"SENDHOOKS_MAX_PER_HOST":             "7",
		"SENDHOOKS_CHANNEL_SIZE":             "30",
		"SENDHOOKS_REQUEST_TIMEOUT":          "3s",
		"SENDHOOKS_RETRY_SCHEDULE":           "1s, 2m,3h",
		"SENDHOOKS_VISIBILITY_TIMEOUT":       "10s",
		"SENDHOOKS_SHUTDOWN_TIMEOUT":         "1m",
		"SENDHOOKS_ALLOW_PRIVATE_NETWORKS":   "true",
		"SENDHOOKS_SECRET_HASH_HEADER_NAME":  "X-Env-Secret",
		"SENDHOOKS_SEND_SECRET_HASH_HEADER":  "true",
		"SENDHOOKS_METRICS_ADDRESS":          "127.0.0.1:9100",
		"SENDHOOKS_CONSUMER_GROUP":           "env-group",
		"SENDHOOKS_CONSUMER_NAME":            "env-name",
		"SENDHOOKS_LOG_LEVEL":                "debug",
	}
	got, err := Load(path, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Redis: RedisConfig{Address: "env:6380", Password: "pw", DB: 4, TLS: true,
			CACert: "/ca.pem", ClientCert: "/c.pem", ClientKey: "/c.key"},
		JobStream: "env-jobs", StatusStream: "env-status",
		ConsumerGroup: "env-group", ConsumerName: "env-name",
		NumWorkers: 20, BatchSize: 30, MaxPerHost: 7,
		RequestTimeout:    3 * time.Second,
		RetrySchedule:     []time.Duration{time.Second, 2 * time.Minute, 3 * time.Hour},
		VisibilityTimeout: 10 * time.Second, ShutdownTimeout: time.Minute,
		AllowPrivateNetworks: true,
		SecretHashHeaderName: "X-Env-Secret", SendSecretHashHeader: true,
		MetricsAddress: "127.0.0.1:9100", LogLevel: "debug",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%#v\nwant\n%#v", got, want)
	}

	// Empty variables count as not set: the file's values stay.
	empty := map[string]string{"SENDHOOKS_NUM_WORKERS": "", "SENDHOOKS_RETRY_SCHEDULE": ""}
	got, err = Load(path, envOf(empty))
	if err != nil {
		t.Fatal(err)
	}
	if got.NumWorkers != 10 || !reflect.DeepEqual(got.RetrySchedule, Default().RetrySchedule) {
		t.Errorf("empty variables changed the config: numWorkers %d, retrySchedule %v", got.NumWorkers, got.RetrySchedule)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	long := `"1s"` + strings.Repeat(`, "1s"`, maxRetrySchedule)
	tests := []struct {
		name    string
		file    string // "" for no file
		env     map[string]string
		want    []string // each must be in the error text
		without string   // must not be in the error text
	}{
		{name: "unknown key", file: `{"redisAdress": "redis:6379"}`,
			want: []string{`unknown key "redisAdress"`, `did you mean "redisAddress"`}},
		{name: "unknown keys sorted", file: `{"zed": 1, "alpha": 2}`,
			want: []string{`unknown keys "alpha", "zed"`}},
		{name: "unknown key inside redis", file: `{"redis": {"redisStream": "x"}}`,
			want: []string{`unknown key "redis.redisStream"`}},
		{name: "top-level key inside redis", file: `{"redis": {"numWorkers": 3}}`,
			want: []string{`"redis.numWorkers"`, "top level"}},
		{name: "numWorkers string", file: `{"numWorkers": "many"}`,
			want: []string{`key "numWorkers"`, `want a whole number, got string "many"`}},
		{name: "numWorkers fraction", file: `{"numWorkers": 1.5}`,
			want: []string{`key "numWorkers"`, "number 1.5"}},
		{name: "numWorkers null", file: `{"numWorkers": null}`,
			want: []string{`key "numWorkers"`, "got null"}},
		{name: "redisSsl number", file: `{"redisSsl": 3}`,
			want: []string{`key "redisSsl"`, "got number 3"}},
		{name: "redisSsl unknown word", file: `{"redisSsl": "yes please"}`,
			want: []string{`key "redisSsl"`, `"yes please"`}},
		{name: "nested redisDb not a number", file: `{"redis": {"redisDb": "zero"}}`,
			want: []string{`key "redis.redisDb"`, `"zero"`}},
		{name: "retrySchedule string", file: `{"retrySchedule": "5s"}`,
			want: []string{`key "retrySchedule"`, `got string "5s"`}},
		{name: "retrySchedule bad entry", file: `{"retrySchedule": ["5s", "1m", "5 parsecs"]}`,
			want: []string{`key "retrySchedule[2]"`, `"5 parsecs"`}},
		{name: "retrySchedule number entry", file: `{"retrySchedule": ["5s", 60]}`,
			want: []string{`key "retrySchedule[1]"`, "number 60"}},
		{name: "retrySchedule negative", file: `{"retrySchedule": ["5s", "-1s"]}`,
			want: []string{`key "retrySchedule[1]"`, "-1s"}},
		{name: "retrySchedule too long", file: `{"retrySchedule": [` + long + `]}`,
			want: []string{`key "retrySchedule"`, "at most 100"}},
		{name: "bad duration", file: `{"requestTimeout": "5 parsecs"}`,
			want: []string{`key "requestTimeout"`, `"5 parsecs"`}},
		{name: "requestTimeout zero", file: `{"requestTimeout": "0s"}`,
			want: []string{`key "requestTimeout"`, "0s"}},
		{name: "visibilityTimeout not above requestTimeout", file: `{"requestTimeout": "2m", "visibilityTimeout": "2m"}`,
			want: []string{`key "visibilityTimeout"`, "requestTimeout", "2m0s"}},
		{name: "visibilityTimeout default below requestTimeout", file: `{"requestTimeout": "5m"}`,
			want: []string{`key "visibilityTimeout"`, "requestTimeout"}},
		{name: "shutdownTimeout negative", file: `{"shutdownTimeout": "-1s"}`,
			want: []string{`key "shutdownTimeout"`, "-1s"}},
		{name: "broker kafka", file: `{"broker": "kafka"}`,
			want: []string{`key "broker"`, `"kafka"`}},
		{name: "redis key at top and in redis", file: `{"redisAddress": "a:1", "redis": {"redisAddress": "b:2"}}`,
			want: []string{`key "redisAddress" is given twice`, `"redis.redisAddress"`}},
		{name: "same key twice in other case", file: `{"numWorkers": 1, "NumWorkers": 2}`,
			want: []string{`key "numWorkers" is given twice`, `"NumWorkers"`}},
		{name: "redis object twice", file: `{"redis": {}, "Redis": {}}`,
			want: []string{`key "redis" is given twice`}},
		{name: "redis not an object", file: `{"redis": "redis:6379"}`,
			want: []string{`key "redis"`, "want an object"}},
		{name: "numWorkers zero", file: `{"numWorkers": 0}`,
			want: []string{`key "numWorkers"`, "got 0"}},
		{name: "numWorkers too many", file: `{"numWorkers": 10001}`,
			want: []string{`key "numWorkers"`, "10001"}},
		{name: "channelSize zero", file: `{"channelSize": 0}`,
			want: []string{`key "channelSize"`, "got 0"}},
		{name: "maxPerHost negative", file: `{"maxPerHost": -1}`,
			want: []string{`key "maxPerHost"`, "-1"}},
		{name: "redisDb negative in redis", file: `{"redis": {"redisDb": "-1"}}`,
			want: []string{`key "redis.redisDb"`, "-1"}},
		{name: "logLevel unknown", file: `{"logLevel": "verbose"}`,
			want: []string{`key "logLevel"`, `"verbose"`}},
		{name: "metricsAddress without port", file: `{"metricsAddress": "9090"}`,
			want: []string{`key "metricsAddress"`, `"9090"`}},
		{name: "redisAddress without port", file: `{"redisAddress": "redis"}`,
			want: []string{`key "redisAddress"`, `"redis"`}},
		{name: "consumerName empty", file: `{"consumerName": ""}`,
			want: []string{`key "consumerName"`}},
		{name: "streams equal", file: `{"redisStreamName": "hooks", "redisStreamStatusName": "hooks"}`,
			want: []string{`key "redisStreamStatusName"`, "redisStreamName"}},
		{name: "statusStreamMaxLen zero", file: `{"statusStreamMaxLen": 0}`,
			want: []string{`key "statusStreamMaxLen"`, "at least 1", "number 0"}},
		{name: "statusStreamMaxLen negative", file: `{"statusStreamMaxLen": -5}`,
			want: []string{`key "statusStreamMaxLen"`, "number -5"}},
		{name: "statusStreamMaxLen string", file: `{"statusStreamMaxLen": "1000"}`,
			want: []string{`key "statusStreamMaxLen"`, `string "1000"`}},
		{name: "statusStreamMaxLen inside redis", file: `{"redis": {"statusStreamMaxLen": 10}}`,
			want: []string{`"redis.statusStreamMaxLen"`, "top level"}},
		{name: "deadLetterMaxLen zero", file: `{"redis": {}, "deadLetterMaxLen": 0}`,
			want: []string{`key "deadLetterMaxLen"`, "at least 1", "number 0"}},
		{name: "deadLetterMaxLen fraction", file: `{"deadLetterMaxLen": 2.5}`,
			want: []string{`key "deadLetterMaxLen"`, "number 2.5"}},
		{name: "env statusStreamMaxLen zero", env: map[string]string{"SENDHOOKS_STATUS_STREAM_MAX_LEN": "0"},
			want: []string{"SENDHOOKS_STATUS_STREAM_MAX_LEN", `key "statusStreamMaxLen"`, `"0"`}},
		{name: "env deadLetterMaxLen negative", env: map[string]string{"SENDHOOKS_DEAD_LETTER_MAX_LEN": "-1"},
			want: []string{"SENDHOOKS_DEAD_LETTER_MAX_LEN", `key "deadLetterMaxLen"`, `"-1"`}},
		{name: "status stream is the dead-letter stream", file: `{"redisStreamName": "jobs", "redisStreamStatusName": "jobs-dead"}`,
			want: []string{`key "redisStreamStatusName"`, "dead-letter stream", `"jobs-dead"`}},
		{name: "status stream is the retry set", file: `{"redis": {"redisStreamStatusName": "hooks-retry"}}`,
			want: []string{`key "redis.redisStreamStatusName"`, "retry set", `"hooks-retry"`}},
		{name: "header name invalid", file: `{"secretHashHeaderName": "X Secret"}`,
			want: []string{`key "secretHashHeaderName"`, `"X Secret"`}},
		{name: "password of the wrong type is not echoed", file: `{"redisPassword": 123456}`,
			want: []string{`key "redisPassword"`, "number"}, without: "123456"},
		{name: "invalid JSON", file: "{\n  \"numWorkers\": 3,\n  \"logLevel\": \"info\"\n  \"x\": 1\n}",
			want: []string{"invalid JSON at line 4, column 3"}},
		{name: "not an object", file: `["redis:6379"]`,
			want: []string{"want a JSON object", "an array"}},
		{name: "env not a number", env: map[string]string{"SENDHOOKS_NUM_WORKERS": "many"},
			want: []string{"SENDHOOKS_NUM_WORKERS", `"many"`}},
		{name: "env bad bool", env: map[string]string{"SENDHOOKS_REDIS_SSL": "maybe"},
			want: []string{"SENDHOOKS_REDIS_SSL", `"maybe"`}},
		{name: "env bad retry entry", env: map[string]string{"SENDHOOKS_RETRY_SCHEDULE": "5s,5 parsecs"},
			want: []string{"SENDHOOKS_RETRY_SCHEDULE", `retrySchedule[1]`, `"5 parsecs"`}},
		{name: "env impossible value", file: `{"numWorkers": 3}`, env: map[string]string{"SENDHOOKS_NUM_WORKERS": "0"},
			want: []string{"SENDHOOKS_NUM_WORKERS", `key "numWorkers"`, "got 0"}},
		{name: "env bad duration", env: map[string]string{"SENDHOOKS_REQUEST_TIMEOUT": "soon"},
			want: []string{"SENDHOOKS_REQUEST_TIMEOUT", `"soon"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			_, err := Load(path, envOf(tt.env))
			if err == nil {
				t.Fatalf("Load succeeded; want an error containing %q", tt.want)
			}
			msg := err.Error()
			prefix := "config: "
			if path != "" {
				prefix = "config " + path + ": "
			}
			for _, w := range append(tt.want, prefix) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tt.without != "" && strings.Contains(msg, tt.without) {
				t.Errorf("error %q shows %q", msg, tt.without)
			}
		})
	}
}

func TestLoadConfigStreamCaps(t *testing.T) {
	t.Parallel()
	def, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.statusStreamMaxLen() != 1_000_000 || def.deadLetterMaxLen() != 100_000 {
		t.Errorf("default caps: statusStreamMaxLen %d, deadLetterMaxLen %d; want 1000000, 100000",
			def.statusStreamMaxLen(), def.deadLetterMaxLen())
	}
	if s := def.String(); !strings.Contains(s, "statusStreamMaxLen=1000000") || !strings.Contains(s, "deadLetterMaxLen=100000") {
		t.Errorf("config log lacks the caps: %s", s)
	}

	path := writeConfig(t, `{"statusStreamMaxLen": 5000, "deadLetterMaxLen": 50}`)
	got, err := Load(path, envOf(map[string]string{
		"SENDHOOKS_STATUS_STREAM_MAX_LEN": "7",
		"SENDHOOKS_DEAD_LETTER_MAX_LEN":   " 9 ",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got.StatusStreamMaxLen != 7 || got.DeadLetterMaxLen != 9 {
		t.Errorf("environment over the file: statusStreamMaxLen %d, deadLetterMaxLen %d; want 7, 9",
			got.StatusStreamMaxLen, got.DeadLetterMaxLen)
	}
	if got.statusStreamMaxLen() != 7 || got.deadLetterMaxLen() != 9 {
		t.Errorf("caps in use: %d, %d; want 7, 9", got.statusStreamMaxLen(), got.deadLetterMaxLen())
	}

	// The defaults spelled out load as no file does.
	spelled, err := Load(writeConfig(t, `{"statusStreamMaxLen": 1000000, "deadLetterMaxLen": 100000}`), nil)
	if err != nil || !reflect.DeepEqual(spelled, def) {
		t.Errorf("the default caps spelled out load as %+v, %v; want the defaults", spelled, err)
	}

	// A Config built in code: 0 is the default, a negative cap is refused.
	c := Default()
	c.DeadLetterMaxLen = -1
	if _, err := c.Resolve(); err == nil || !strings.Contains(err.Error(), `key "deadLetterMaxLen"`) {
		t.Errorf("Resolve with deadLetterMaxLen -1: %v; want an error naming the key", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.json")
	_, err := Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(%q) = %v; want an error naming the file", path, err)
	}
}

func TestConfigResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		change      func(*Config)
		wantPerHost int
		wantHeader  string
	}{
		{"default", func(*Config) {}, 0, "X-Secret-Hash"},
		{"one worker", func(c *Config) { c.NumWorkers = 1 }, 0, "X-Secret-Hash"},
		{"three workers", func(c *Config) { c.NumWorkers = 3 }, 0, "X-Secret-Hash"},
		{"explicit maxPerHost", func(c *Config) { c.MaxPerHost = 5 }, 5, "X-Secret-Hash"},
		{"secret header off", func(c *Config) { c.SendSecretHashHeader = false }, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.change(&c)
			got, err := c.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			if got.MaxPerHost != tt.wantPerHost || got.SecretHashHeaderName != tt.wantHeader {
				t.Errorf("Resolve: maxPerHost %d, header %q; want %d, %q",
					got.MaxPerHost, got.SecretHashHeaderName, tt.wantPerHost, tt.wantHeader)
			}
		})
	}
}

func TestConfigRedactsPassword(t *testing.T) {
	t.Parallel()
	const password = "hunter2-very-secret"
	c := resolvedDefault(t)
	c.Redis.Password = password

	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("starting", "config", c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("starting", "config", c, "redis", c.Redis)
	outputs := map[string]string{
		"log":              logged.String(),
		"String":           c.String(),
		"%v":               fmt.Sprintf("%v", c),
		"%+v":              fmt.Sprintf("%+v", c),
		"RedisConfig %v":   fmt.Sprintf("%v", c.Redis),
		"RedisConfig %+v":  fmt.Sprintf("%+v", c.Redis),
		"RedisConfig.Strg": c.Redis.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, password) {
			t.Errorf("%s shows the password: %s", name, out)
		}
		if !strings.Contains(out, "****") {
			t.Errorf("%s does not mark the password as set: %s", name, out)
		}
	}
	if !strings.Contains(logged.String(), "numWorkers=256") {
		t.Errorf("log lacks the config keys: %s", logged.String())
	}

	c.Redis.Password = ""
	if s := c.String(); strings.Contains(s, "****") {
		t.Errorf("String shows a password that is not set: %s", s)
	}
}

func TestConfigPathPicksTheFirstPresent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	local := filepath.Join(dir, "config.json")
	root := filepath.Join(dir, "root-config.json")
	absent := filepath.Join(dir, "absent.json")
	if err := os.WriteFile(root, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := firstPresent("", absent, root); got != root {
		t.Errorf("with only the second present: %q, want %q", got, root)
	}
	if err := os.WriteFile(local, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := firstPresent("", local, root); got != local {
		t.Errorf("with both present: %q, want %q", got, local)
	}
	if got := firstPresent("given.json", local, root); got != "given.json" {
		t.Errorf("with a flag: %q, want the flag", got)
	}
	if got := firstPresent("", absent); got != "" {
		t.Errorf("with none present: %q, want \"\"", got)
	}
}

func TestConfigPathInWorkingDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if got := ConfigPath("/etc/sendhooks.json"); got != "/etc/sendhooks.json" {
		t.Errorf("ConfigPath(flag) = %q, want the flag", got)
	}
	if _, err := os.Stat("/root/config.json"); os.IsNotExist(err) {
		if got := ConfigPath(""); got != "" {
			t.Errorf("ConfigPath with no file = %q, want \"\"", got)
		}
	}
	if err := os.WriteFile("config.json", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ConfigPath(""); got != "./config.json" {
		t.Errorf("ConfigPath with ./config.json = %q, want ./config.json", got)
	}
}

func TestConfigEnvNamesFollowKeys(t *testing.T) {
	t.Parallel()
	for _, s := range settings() {
		if s.env == "" {
			continue
		}
		var want strings.Builder
		want.WriteString("SENDHOOKS_")
		for i, r := range s.key {
			if unicode.IsUpper(r) && i > 0 {
				want.WriteByte('_')
			}
			want.WriteRune(unicode.ToUpper(r))
		}
		if s.env != want.String() {
			t.Errorf("key %q: environment variable %q, want %q", s.key, s.env, want.String())
		}
	}
}

// A key given twice with the same spelling is an error too, though
// encoding/json would keep the last value silently.
func TestLoadConfigSameKeyTwice(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]string{
		`{"numWorkers": 1, "numWorkers": 2}`:                `key "numWorkers" is given twice: as "numWorkers" and as "numWorkers"`,
		`{"redis": {"redisDb": "1", "redisDb": "2"}}`:       `key "redisDb" is given twice: as "redis.redisDb" and as "redis.redisDb"`,
		`{"redis": {"redisDb": "1"}, "redis": {}}`:          `key "redis" is given twice: as "redis" and as "redis"`,
		`{"logLevel": "debug", "x": 1, "logLevel": "info"}`: `unknown key "x"`,
	} {
		_, err := Load(writeConfig(t, file), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v; want an error containing %q", file, err, want)
		}
	}
}
