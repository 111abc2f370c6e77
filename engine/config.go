package engine

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sendhooks/sendhooks"
)

// Config is everything the engine is told at start. Load builds it from a
// config file and SENDHOOKS_* environment variables; Default gives the
// values for anything not said. table names the config key of each field.
type Config struct {
	Redis         RedisConfig
	JobStream     string // the stream producers write jobs into
	StatusStream  string // the stream status events are written into
	ConsumerGroup string // the group every engine sharing JobStream joins
	// ConsumerName names this engine in the group: stable across restarts,
	// so that a restarted engine takes up its own pending jobs at once, and
	// distinct between engines running at the same time.
	ConsumerName string

	NumWorkers     int             // deliveries at once; also bounds the jobs read ahead of them
	BatchSize      int             // most entries one XREADGROUP returns
	MaxPerHost     int             // above 0, a hard cap on concurrent requests to one receiver host; 0 sets none
	RequestTimeout time.Duration   // one HTTP attempt, connecting included
	RetrySchedule  []time.Duration // the waits before attempts 2, 3, ...: len+1 attempts in all
	// VisibilityTimeout is how long a job may stay pending with a consumer
	// before another engine claims it; it must exceed RequestTimeout.
	VisibilityTimeout time.Duration
	ShutdownTimeout   time.Duration // how long in-flight deliveries may run after SIGTERM

	// StatusStreamMaxLen caps the status stream while no consumer group
	// reads it; while groups read it, it loses only what they have all
	// acknowledged. 0 means DefaultStatusStreamMaxLen.
	StatusStreamMaxLen int
	DeadLetterMaxLen   int // caps the dead-letter stream; 0 means DefaultDeadLetterMaxLen

	AllowPrivateNetworks bool   // lets jobs target internal addresses; off by default (SSRF guard)
	SecretHashHeaderName string // the older engine's header carrying secretHash; "" when not sent
	SendSecretHashHeader bool   // whether to send that header
	MetricsAddress       string // when set, serves /metrics, /healthz and /readyz
	LogLevel             string // debug, info, warn or error
}

// RedisConfig says how to reach Redis. The certificate paths (PEM files)
// are used only with TLS; without it they are ignored, as the older engine
// did (its example config lists them next to redisSsl "false").
type RedisConfig struct {
	Address, Password             string // Address is host:port
	DB                            int
	TLS                           bool
	CACert, ClientCert, ClientKey string // the client pair for mutual TLS
}

// Defaults of the stream caps, for the Config fields left at 0.
const (
	DefaultStatusStreamMaxLen = 1_000_000
	DefaultDeadLetterMaxLen   = 100_000
)

func (c Config) statusStreamMaxLen() int {
	return cmp.Or(c.StatusStreamMaxLen, DefaultStatusStreamMaxLen)
}

func (c Config) deadLetterMaxLen() int { return cmp.Or(c.DeadLetterMaxLen, DefaultDeadLetterMaxLen) }

// Default returns the configuration used for everything that the config
// file and the environment leave unsaid.
func Default() Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "sendhooks"
	}
	return Config{
		Redis:     RedisConfig{Address: "127.0.0.1:6379"},
		JobStream: sendhooks.DefaultJobStream, StatusStream: sendhooks.DefaultStatusStream,
		ConsumerGroup: "sendhooks", ConsumerName: name,
		NumWorkers: 256, BatchSize: 128,
		RequestTimeout: 15 * time.Second,
		RetrySchedule: []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
			2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour},
		VisibilityTimeout: 2 * time.Minute, ShutdownTimeout: 30 * time.Second,
		SecretHashHeaderName: "X-Secret-Hash", SendSecretHashHeader: true,
		LogLevel: "info",
	}
}

// Resolve checks c with Validate and returns it with SecretHashHeaderName
// cleared when SendSecretHashHeader is off, and a stream cap equal to its
// default as 0, which means the same (so that a file spelling out every
// default, config.example.json, loads as no file does). Use it on a Config
// built in code rather than by Load.
func (c Config) Resolve() (Config, error) {
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	if !c.SendSecretHashHeader {
		c.SecretHashHeaderName = ""
	}
	if c.StatusStreamMaxLen == DefaultStatusStreamMaxLen {
		c.StatusStreamMaxLen = 0
	}
	if c.DeadLetterMaxLen == DefaultDeadLetterMaxLen {
		c.DeadLetterMaxLen = 0
	}
	c.RetrySchedule = slices.Clone(c.RetrySchedule)
	return c, nil
}

// Limits on the values Validate accepts.
const (
	maxWorkers       = 10000
	maxRetrySchedule = 100
)

// Validate reports the first value of c that the engine cannot run with,
// naming it by its config key.
func (c Config) Validate() error {
	for i, d := range c.RetrySchedule {
		if d < 0 {
			err := fmt.Errorf("must not be negative, got %v", d)
			return &keyError{key: "retrySchedule", index: fmt.Sprintf("[%d]", i), err: err}
		}
	}
	sharesStatus := func(name, stream string) error {
		return failIf(c.StatusStream == stream, "redisStreamStatusName", "must differ from %s, both are %q", name, stream)
	}
	return cmp.Or( // the first error that is not nil
		hostPort("redisAddress", c.Redis.Address, false),
		failIf(c.Redis.DB < 0, "redisDb", "must be at least 0, got %d", c.Redis.DB),
		failIf(c.JobStream == "", "redisStreamName", "must not be empty"),
		failIf(c.StatusStream == "", "redisStreamStatusName", "must not be empty"),
		sharesStatus("redisStreamName", c.JobStream),
		sharesStatus(`the retry set (redisStreamName + "-retry")`, sendhooks.RetrySet(c.JobStream)),
		sharesStatus(`the dead-letter stream (redisStreamName + "-dead")`, sendhooks.DeadLetterStream(c.JobStream)),
		failIf(c.ConsumerGroup == "", "consumerGroup", "must not be empty"),
		failIf(c.ConsumerName == "", "consumerName", "must not be empty"),
		failIf(c.NumWorkers < 1 || c.NumWorkers > maxWorkers, "numWorkers",
			"must be from 1 to %d, got %d", maxWorkers, c.NumWorkers),
		failIf(c.BatchSize < 1, "channelSize", "must be at least 1, got %d", c.BatchSize),
		failIf(c.MaxPerHost < 0, "maxPerHost", "must be at least 0 (0 for no cap), got %d", c.MaxPerHost),
		failIf(c.RequestTimeout <= 0, "requestTimeout", "must be more than 0s, got %v", c.RequestTimeout),
		failIf(len(c.RetrySchedule) > maxRetrySchedule, "retrySchedule",
			"must hold at most %d waits, got %d", maxRetrySchedule, len(c.RetrySchedule)),
		failIf(c.VisibilityTimeout <= c.RequestTimeout, "visibilityTimeout",
			"must be longer than requestTimeout (%v), got %v", c.RequestTimeout, c.VisibilityTimeout),
		failIf(c.ShutdownTimeout < 0, "shutdownTimeout", "must be at least 0s, got %v", c.ShutdownTimeout),
		failIf(c.StatusStreamMaxLen < 0, "statusStreamMaxLen", "must be at least 0, got %d", c.StatusStreamMaxLen),
		failIf(c.DeadLetterMaxLen < 0, "deadLetterMaxLen", "must be at least 0, got %d", c.DeadLetterMaxLen),
		failIf(c.SendSecretHashHeader && c.SecretHashHeaderName == "", "secretHashHeaderName",
			"must not be empty while sendSecretHashHeader is true"),
		failIf(c.SendSecretHashHeader && !httpguts.ValidHeaderFieldName(c.SecretHashHeaderName), "secretHashHeaderName",
			"%q is not a valid HTTP header name", c.SecretHashHeaderName),
		hostPort("metricsAddress", c.MetricsAddress, true),
		failIf(!slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel), "logLevel",
			"must be one of debug, info, warn, error, got %q", c.LogLevel),
	)
}

// keyError is a config value that cannot be used.
type keyError struct {
	key   string // as the file gave it: "numWorkers", "redis.redisDb"
	index string // position in a list value, as "[2]"; "" for none
	from  string // the environment variable that gave the value, if one did
	err   error  // what is wrong, with the value
}

func (e *keyError) Error() string {
	s := fmt.Sprintf("key %q", e.key+e.index)
	if e.from != "" {
		s += " (from " + e.from + ")"
	}
	return s + ": " + e.err.Error()
}

// failIf returns an error naming key when bad holds.
func failIf(bad bool, key, format string, args ...any) error {
	if !bad {
		return nil
	}
	return &keyError{key: key, err: fmt.Errorf(format, args...)}
}

// hostPort checks a host:port address; optional lets it be empty.
func hostPort(key, v string, optional bool) error {
	_, port, err := net.SplitHostPort(v)
	if err == nil && port == "" {
		err = errors.New("no port")
	}
	return failIf(err != nil && (v != "" || !optional), key, "want host:port, got %q (%v)", v, err)
}

// LogValue prints the configuration for the start-up log under the keys of
// the config file, with the Redis password shown as "****" when it is set.
func (c Config) LogValue() slog.Value {
	c.StatusStreamMaxLen, c.DeadLetterMaxLen = c.statusStreamMaxLen(), c.deadLetterMaxLen()
	c.Redis = c.Redis.masked()
	var attrs []slog.Attr
	for _, s := range c.table() {
		if s.env != "" { // broker has no value to show
			attrs = append(attrs, slog.Any(s.key, reflect.ValueOf(s.field).Elem().Interface()))
		}
	}
	return slog.GroupValue(attrs...)
}

// String prints the configuration as LogValue does, without the password.
func (c Config) String() string { return c.LogValue().String() }

// LogValue prints the Redis settings, the password shown as "****" when set.
func (r RedisConfig) LogValue() slog.Value { return slog.AnyValue(redisFields(r.masked())) }

// String prints the Redis settings as LogValue does, without the password.
func (r RedisConfig) String() string { return fmt.Sprintf("%+v", redisFields(r.masked())) }

type redisFields RedisConfig // without the methods, to print the fields

func (r RedisConfig) masked() RedisConfig {
	if r.Password != "" {
		r.Password = "****"
	}
	return r
}
