package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sendhooks/sendhooks"
)

// Config is everything the engine is told at startup. Load builds it from a
// config file (either shape, see README) and SENDHOOKS_* environment
// overrides; Default gives the values used for anything not said.
type Config struct {
	Redis RedisConfig

	// JobStream is the stream producers write jobs into (redisStreamName).
	JobStream string
	// StatusStream is the stream status events are written into
	// (redisStreamStatusName).
	StatusStream string
	// ConsumerGroup is the consumer group all engines sharing JobStream join.
	ConsumerGroup string
	// ConsumerName names this engine in the group; it must be stable across
	// restarts for a restarted engine to pick up its own pending jobs at once,
	// and distinct between engines running at the same time.
	ConsumerName string

	// NumWorkers is how many deliveries run at once; it also bounds how many
	// jobs are read from the stream ahead of being worked on.
	NumWorkers int
	// BatchSize caps how many entries one XREADGROUP returns (the older
	// engine's channelSize).
	BatchSize int
	// MaxPerHost bounds concurrent requests to one receiver host, so a slow
	// receiver cannot hold every worker.
	MaxPerHost int
	// RequestTimeout bounds one HTTP attempt, connection included.
	RequestTimeout time.Duration
	// RetrySchedule holds the waits before attempt 2, 3, ...; a job gets
	// len(RetrySchedule)+1 attempts.
	RetrySchedule []time.Duration
	// VisibilityTimeout is how long a job may stay pending with a consumer
	// before another engine claims it. It must exceed RequestTimeout.
	VisibilityTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight deliveries may run after
	// SIGTERM; unfinished jobs stay pending for the next start.
	ShutdownTimeout time.Duration

	// StatusStreamMaxLen caps the status stream while no consumer group
	// reads it (statusStreamMaxLen); while groups read it, it is trimmed
	// only of what they have all read and acknowledged. 0 means
	// DefaultStatusStreamMaxLen.
	StatusStreamMaxLen int
	// DeadLetterMaxLen caps the dead-letter stream (deadLetterMaxLen).
	// 0 means DefaultDeadLetterMaxLen.
	DeadLetterMaxLen int

	// AllowPrivateNetworks lets jobs target loopback, private, link-local and
	// other internal addresses. Off by default (SSRF guard).
	AllowPrivateNetworks bool
	// SecretHashHeaderName is the header that carries the job's secretHash as
	// the older engine sent it. Empty when SendSecretHashHeader is false.
	SecretHashHeaderName string
	// SendSecretHashHeader turns the older engine's secret header on or off.
	SendSecretHashHeader bool

	// MetricsAddress, when set, serves /metrics, /healthz and /readyz.
	MetricsAddress string
	// LogLevel is debug, info, warn or error.
	LogLevel string
}

// RedisConfig says how to reach Redis. The certificate paths are used only
// when TLS is on; with TLS off they are accepted and ignored, as the older
// engine did (its example config lists them next to redisSsl "false").
type RedisConfig struct {
	Address    string // host:port
	Password   string
	DB         int
	TLS        bool
	CACert     string // PEM file path; with TLS
	ClientCert string // PEM file path; with TLS, for mutual TLS
	ClientKey  string // PEM file path; with TLS, for mutual TLS
}

// Defaults of the stream caps, for the Config fields left at 0.
const (
	DefaultStatusStreamMaxLen = 1_000_000
	DefaultDeadLetterMaxLen   = 100_000
)

// statusStreamMaxLen is StatusStreamMaxLen, or its default when unset.
func (c Config) statusStreamMaxLen() int {
	return cmp.Or(c.StatusStreamMaxLen, DefaultStatusStreamMaxLen)
}

// deadLetterMaxLen is DeadLetterMaxLen, or its default when unset.
func (c Config) deadLetterMaxLen() int {
	return cmp.Or(c.DeadLetterMaxLen, DefaultDeadLetterMaxLen)
}

// Default returns the configuration used for everything that the config
// file and the environment leave unsaid. MaxPerHost is 0 here, which Load
// and Resolve turn into NumWorkers/2 (at least 1).
func Default() Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "sendhooks"
	}
	return Config{
		Redis:                RedisConfig{Address: "127.0.0.1:6379"},
		JobStream:            sendhooks.DefaultJobStream,
		StatusStream:         sendhooks.DefaultStatusStream,
		ConsumerGroup:        "sendhooks",
		ConsumerName:         name,
		NumWorkers:           64,
		BatchSize:            128,
		RequestTimeout:       15 * time.Second,
		RetrySchedule:        []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour},
		VisibilityTimeout:    2 * time.Minute,
		ShutdownTimeout:      30 * time.Second,
		SecretHashHeaderName: "X-Secret-Hash",
		SendSecretHashHeader: true,
		LogLevel:             "info",
	}
}

// ConfigPath picks the config file the engine reads: flagValue when it is
// given, else ./config.json when it exists, else /root/config.json (where
// the older Docker image read it) when it exists, else "" for defaults plus
// environment overrides.
func ConfigPath(flagValue string) string {
	return firstPresent(flagValue, "./config.json", "/root/config.json")
}

// firstPresent returns explicit when set, else the first candidate that
// exists. A candidate that cannot be checked for another reason than its
// absence (a permission error, say) counts as present, so that loading it
// reports the problem instead of silently running on defaults.
func firstPresent(explicit string, candidates ...string) string {
	if explicit != "" {
		return explicit
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			return p
		}
	}
	return ""
}

// Load builds the engine's configuration: Default, then the JSON file at
// path (none when path is ""), then the SENDHOOKS_* environment variables
// read through getenv (none when getenv is nil), then Resolve.
//
// The file may take the flat shape of the original article (redis* keys at
// the top) or the nested shape of the older engine (redis* keys inside a
// "redis" object, next to broker, numWorkers, channelSize and
// secretHashHeaderName); the newer keys sit at the top level in both. Keys
// match without regard to case, as they did for the older engine. Unknown
// keys, values of the wrong JSON type and impossible values are errors that
// name the key (or the environment variable) and the value.
//
// An environment variable set to "" counts as not set.
func Load(path string, getenv func(string) string) (Config, error) {
	l := loader{cfg: Default(), table: settings(), given: map[string]string{}}
	where := "config"
	if path != "" {
		where = "config " + path
		if err := l.readFile(path); err != nil {
			return Config{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	if getenv != nil {
		if err := l.readEnv(getenv); err != nil {
			return Config{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	cfg, err := l.cfg.Resolve()
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", where, l.locate(err))
	}
	return cfg, nil
}

// Resolve checks c with Validate and returns it with the values that
// derive from others filled in: MaxPerHost 0 becomes NumWorkers/2 (at
// least 1), and SecretHashHeaderName is cleared when SendSecretHashHeader
// is off. A stream cap equal to its default becomes 0, which means the
// same. Use it on a Config built in code rather than by Load.
func (c Config) Resolve() (Config, error) {
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	if c.MaxPerHost == 0 {
		c.MaxPerHost = max(c.NumWorkers/2, 1)
	}
	if !c.SendSecretHashHeader {
		c.SecretHashHeaderName = ""
	}
	// A cap given as its default is kept as 0, the form Default uses, so
	// that a file spelling out every default (config.example.json) loads
	// as no file does.
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
	checks := []error{
		hostPort("redisAddress", c.Redis.Address, false),
		atLeast("redisDb", c.Redis.DB, 0),
		notEmpty("redisStreamName", c.JobStream),
		notEmpty("redisStreamStatusName", c.StatusStream),
		differ("redisStreamStatusName", c.StatusStream, "redisStreamName", c.JobStream),
		differ("redisStreamStatusName", c.StatusStream, "the retry set (redisStreamName + \"-retry\")", sendhooks.RetrySet(c.JobStream)),
		differ("redisStreamStatusName", c.StatusStream, "the dead-letter stream (redisStreamName + \"-dead\")", sendhooks.DeadLetterStream(c.JobStream)),
		notEmpty("consumerGroup", c.ConsumerGroup),
		notEmpty("consumerName", c.ConsumerName),
		between("numWorkers", c.NumWorkers, 1, maxWorkers),
		atLeast("channelSize", c.BatchSize, 1),
		atLeast("maxPerHost", c.MaxPerHost, 0),
		positive("requestTimeout", c.RequestTimeout),
		retrySchedule(c.RetrySchedule),
		longer("visibilityTimeout", c.VisibilityTimeout, "requestTimeout", c.RequestTimeout),
		atLeast("shutdownTimeout", c.ShutdownTimeout, 0),
		atLeast("statusStreamMaxLen", c.StatusStreamMaxLen, 0),
		atLeast("deadLetterMaxLen", c.DeadLetterMaxLen, 0),
		headerName(c),
		hostPort("metricsAddress", c.MetricsAddress, true),
		oneOf("logLevel", c.LogLevel, "debug", "info", "warn", "error"),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// keyError is a config value that cannot be used.
type keyError struct {
	key   string // the key as the file gave it: "numWorkers", "redis.redisDb"
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

func (e *keyError) Unwrap() error { return e.err }

func invalid(key, format string, args ...any) error {
	return &keyError{key: key, err: fmt.Errorf(format, args...)}
}

func atLeast[T int | time.Duration](key string, v, least T) error {
	if v < least {
		return invalid(key, "must be at least %v, got %v", least, v)
	}
	return nil
}

func between(key string, v, least, most int) error {
	if v < least || v > most {
		return invalid(key, "must be from %d to %d, got %d", least, most, v)
	}
	return nil
}

func positive(key string, d time.Duration) error {
	if d <= 0 {
		return invalid(key, "must be more than 0s, got %v", d)
	}
	return nil
}

func longer(key string, d time.Duration, otherKey string, other time.Duration) error {
	if d <= other {
		return invalid(key, "must be longer than %s (%v), got %v", otherKey, other, d)
	}
	return nil
}

func notEmpty(key, v string) error {
	if v == "" {
		return invalid(key, "must not be empty")
	}
	return nil
}

func differ(key, v, otherKey, other string) error {
	if v == other {
		return invalid(key, "must differ from %s, both are %q", otherKey, v)
	}
	return nil
}

func oneOf(key, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return invalid(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
	return nil
}

func hostPort(key, v string, optional bool) error {
	if v == "" && optional {
		return nil
	}
	_, port, err := net.SplitHostPort(v)
	if err == nil && port == "" {
		err = errors.New("no port")
	}
	if err != nil {
		return invalid(key, "want host:port, got %q (%v)", v, err)
	}
	return nil
}

func retrySchedule(waits []time.Duration) error {
	if len(waits) > maxRetrySchedule {
		return invalid("retrySchedule", "must hold at most %d waits, got %d", maxRetrySchedule, len(waits))
	}
	for i, d := range waits {
		if d < 0 {
			return &keyError{key: "retrySchedule", index: fmt.Sprintf("[%d]", i), err: fmt.Errorf("must not be negative, got %v", d)}
		}
	}
	return nil
}

// headerName checks the older engine's secret header name when it is sent.
func headerName(c Config) error {
	const key = "secretHashHeaderName"
	if !c.SendSecretHashHeader {
		return nil
	}
	if c.SecretHashHeaderName == "" {
		return invalid(key, "must not be empty while sendSecretHashHeader is true")
	}
	valid := func(r rune) bool {
		return r < 0x7f && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
	}
	if strings.IndexFunc(c.SecretHashHeaderName, func(r rune) bool { return !valid(r) }) >= 0 {
		return invalid(key, "%q is not a valid HTTP header name", c.SecretHashHeaderName)
	}
	return nil
}

// LogValue prints the configuration for the startup log, under the keys of
// the config file, with the Redis password shown as "****" when it is set.
func (c Config) LogValue() slog.Value {
	redis := append(c.Redis.attrs(),
		slog.String("redisStreamName", c.JobStream),
		slog.String("redisStreamStatusName", c.StatusStream))
	return slog.GroupValue(
		slog.Attr{Key: "redis", Value: slog.GroupValue(redis...)},
		slog.String("consumerGroup", c.ConsumerGroup),
		slog.String("consumerName", c.ConsumerName),
		slog.Int("numWorkers", c.NumWorkers),
		slog.Int("channelSize", c.BatchSize),
		slog.Int("maxPerHost", c.MaxPerHost),
		slog.Duration("requestTimeout", c.RequestTimeout),
		slog.Any("retrySchedule", c.RetrySchedule),
		slog.Duration("visibilityTimeout", c.VisibilityTimeout),
		slog.Duration("shutdownTimeout", c.ShutdownTimeout),
		slog.Int("statusStreamMaxLen", c.statusStreamMaxLen()),
		slog.Int("deadLetterMaxLen", c.deadLetterMaxLen()),
		slog.Bool("allowPrivateNetworks", c.AllowPrivateNetworks),
		slog.String("secretHashHeaderName", c.SecretHashHeaderName),
		slog.Bool("sendSecretHashHeader", c.SendSecretHashHeader),
		slog.String("metricsAddress", c.MetricsAddress),
		slog.String("logLevel", c.LogLevel),
	)
}

// String prints the configuration as LogValue does, without the password.
func (c Config) String() string { return c.LogValue().String() }

// LogValue prints the Redis settings with the password shown as "****"
// when it is set.
func (r RedisConfig) LogValue() slog.Value { return slog.GroupValue(r.attrs()...) }

// String prints the Redis settings as LogValue does, without the password.
func (r RedisConfig) String() string { return r.LogValue().String() }

func (r RedisConfig) attrs() []slog.Attr {
	password := ""
	if r.Password != "" {
		password = "****"
	}
	return []slog.Attr{
		slog.String("redisAddress", r.Address),
		slog.String("redisPassword", password),
		slog.Int("redisDb", r.DB),
		slog.Bool("redisSsl", r.TLS),
		slog.String("redisCaCert", r.CACert),
		slog.String("redisClientCert", r.ClientCert),
		slog.String("redisClientKey", r.ClientKey),
	}
}

// setting is one row of the key table: a config key, the environment
// variable that overrides it, and where its value goes.
type setting struct {
	key   string // as in the config file
	env   string // SENDHOOKS_ + key in upper snake case; "" when none
	redis bool   // may sit inside the "redis" object as well as at the top
	bind  binder
}

// nestedRedis is the key of the older engine's object of redis* keys.
const nestedRedis = "redis"

// settings is the table of every config key. Adding a key is one line here.
func settings() []setting {
	var (
		text     = textKind(false)
		secret   = textKind(true)
		whole    = wholeKind(false)
		flag     = flagKind(false)
		duration = durationKind()
		count    = countKind()
	)
	return []setting{
		{"redisAddress", "SENDHOOKS_REDIS_ADDRESS", true, bind(text, func(c *Config) *string { return &c.Redis.Address })},
		{"redisPassword", "SENDHOOKS_REDIS_PASSWORD", true, bind(secret, func(c *Config) *string { return &c.Redis.Password })},
		{"redisDb", "SENDHOOKS_REDIS_DB", true, bind(wholeKind(true), func(c *Config) *int { return &c.Redis.DB })},
		{"redisSsl", "SENDHOOKS_REDIS_SSL", true, bind(flagKind(true), func(c *Config) *bool { return &c.Redis.TLS })},
		{"redisCaCert", "SENDHOOKS_REDIS_CA_CERT", true, bind(text, func(c *Config) *string { return &c.Redis.CACert })},
		{"redisClientCert", "SENDHOOKS_REDIS_CLIENT_CERT", true, bind(text, func(c *Config) *string { return &c.Redis.ClientCert })},
		{"redisClientKey", "SENDHOOKS_REDIS_CLIENT_KEY", true, bind(text, func(c *Config) *string { return &c.Redis.ClientKey })},
		{"redisStreamName", "SENDHOOKS_REDIS_STREAM_NAME", true, bind(text, func(c *Config) *string { return &c.JobStream })},
		{"redisStreamStatusName", "SENDHOOKS_REDIS_STREAM_STATUS_NAME", true, bind(text, func(c *Config) *string { return &c.StatusStream })},
		{"broker", "", false, bind(brokerKind(), func(*Config) *string { return new(string) })},
		{"numWorkers", "SENDHOOKS_NUM_WORKERS", false, bind(whole, func(c *Config) *int { return &c.NumWorkers })},
		{"maxPerHost", "SENDHOOKS_MAX_PER_HOST", false, bind(whole, func(c *Config) *int { return &c.MaxPerHost })},
		{"channelSize", "SENDHOOKS_CHANNEL_SIZE", false, bind(whole, func(c *Config) *int { return &c.BatchSize })},
		{"requestTimeout", "SENDHOOKS_REQUEST_TIMEOUT", false, bind(duration, func(c *Config) *time.Duration { return &c.RequestTimeout })},
		{"retrySchedule", "SENDHOOKS_RETRY_SCHEDULE", false, bind(durationsKind(), func(c *Config) *[]time.Duration { return &c.RetrySchedule })},
		{"visibilityTimeout", "SENDHOOKS_VISIBILITY_TIMEOUT", false, bind(duration, func(c *Config) *time.Duration { return &c.VisibilityTimeout })},
		{"shutdownTimeout", "SENDHOOKS_SHUTDOWN_TIMEOUT", false, bind(duration, func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"statusStreamMaxLen", "SENDHOOKS_STATUS_STREAM_MAX_LEN", false, bind(count, func(c *Config) *int { return &c.StatusStreamMaxLen })},
		{"deadLetterMaxLen", "SENDHOOKS_DEAD_LETTER_MAX_LEN", false, bind(count, func(c *Config) *int { return &c.DeadLetterMaxLen })},
		{"allowPrivateNetworks", "SENDHOOKS_ALLOW_PRIVATE_NETWORKS", false, bind(flag, func(c *Config) *bool { return &c.AllowPrivateNetworks })},
		{"secretHashHeaderName", "SENDHOOKS_SECRET_HASH_HEADER_NAME", false, bind(text, func(c *Config) *string { return &c.SecretHashHeaderName })},
		{"sendSecretHashHeader", "SENDHOOKS_SEND_SECRET_HASH_HEADER", false, bind(flag, func(c *Config) *bool { return &c.SendSecretHashHeader })},
		{"metricsAddress", "SENDHOOKS_METRICS_ADDRESS", false, bind(text, func(c *Config) *string { return &c.MetricsAddress })},
		{"consumerGroup", "SENDHOOKS_CONSUMER_GROUP", false, bind(text, func(c *Config) *string { return &c.ConsumerGroup })},
		{"consumerName", "SENDHOOKS_CONSUMER_NAME", false, bind(text, func(c *Config) *string { return &c.ConsumerName })},
		{"logLevel", "SENDHOOKS_LOG_LEVEL", false, bind(text, func(c *Config) *string { return &c.LogLevel })},
	}
}

// binder reads one key's value into a Config.
type binder interface {
	fromJSON(c *Config, v any) error
	fromEnv(c *Config, s string) error
}

// binding is a binder for a value of type T, stored where at points.
type binding[T any] struct {
	kind kind[T]
	at   func(*Config) *T
}

func bind[T any](k kind[T], at func(*Config) *T) binder { return binding[T]{kind: k, at: at} }

func (b binding[T]) fromJSON(c *Config, v any) error {
	x, err := b.kind.read(v)
	return b.store(c, x, err)
}

func (b binding[T]) fromEnv(c *Config, s string) error {
	x, err := b.kind.readEnv(s)
	return b.store(c, x, err)
}

func (b binding[T]) store(c *Config, v T, err error) error {
	if err == nil {
		*b.at(c) = v
	}
	return err
}

// kind says how one type of value is read, from JSON and from the
// environment.
type kind[T any] struct {
	want string // what a good value looks like, for error messages
	// parse reads the text of an environment variable, and a JSON string
	// when fromString is true.
	parse      func(string) (T, error)
	fromString bool
	// other reads a JSON value that is not a string (json.Number, bool,
	// []any); nil when the kind takes none.
	other func(any) (T, error)
	// secret hides the value in error messages.
	secret bool
}

// errWrongValue is what a kind's parse or other returns for a value it
// cannot read; read turns it into a badValue naming the value.
var errWrongValue = errors.New("wrong value")

func (k kind[T]) read(v any) (T, error) {
	var (
		x   T
		err = errWrongValue
	)
	s, isString := v.(string)
	switch {
	case isString && k.fromString:
		x, err = k.parse(s)
	case !isString && k.other != nil:
		x, err = k.other(v)
	}
	return x, k.explain(err, describe(v))
}

func (k kind[T]) readEnv(s string) (T, error) {
	x, err := k.parse(s)
	return x, k.explain(err, strconv.Quote(s))
}

// explain turns errWrongValue into a badValue that names the value got.
func (k kind[T]) explain(err error, got string) error {
	if !errors.Is(err, errWrongValue) {
		return err
	}
	if k.secret {
		got, _, _ = strings.Cut(got, " ")
		got += " (value hidden)"
	}
	return &badValue{want: k.want, got: got}
}

// badValue is a value of the wrong type or form for its key.
type badValue struct {
	want, got string
	at        string // position in a list value, as "[2]"; "" for none
}

func (b *badValue) Error() string { return "want " + b.want + ", got " + b.got }

// describe names a decoded JSON value's type and shows its value.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + strconv.Quote(v)
	case json.Number:
		return "number " + v.String()
	case bool:
		return "bool " + strconv.FormatBool(v)
	case nil:
		return "null"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

func textKind(secret bool) kind[string] {
	return kind[string]{
		want:       "a string",
		parse:      func(s string) (string, error) { return s, nil },
		fromString: true,
		secret:     secret,
	}
}

// wholeKind reads an int. legacy also takes a JSON string such as "0", as
// the older engine's redisDb was written, with "" meaning 0.
func wholeKind(legacy bool) kind[int] {
	k := kind[int]{want: "a whole number", fromString: legacy}
	k.parse = func(s string) (int, error) {
		if legacy && s == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, errWrongValue
		}
		return n, nil
	}
	k.other = func(v any) (int, error) {
		if n, ok := v.(json.Number); ok {
			return k.parse(n.String())
		}
		return 0, errWrongValue
	}
	if legacy {
		k.want += ` or a string such as "0"`
	}
	return k
}

// countKind reads a whole number of at least 1, for the keys whose 0 in
// a Config means "the default" rather than a value one could give.
func countKind() kind[int] {
	whole := wholeKind(false)
	atLeastOne := func(n int, err error) (int, error) {
		if err == nil && n < 1 {
			err = errWrongValue
		}
		return n, err
	}
	return kind[int]{
		want:  "a whole number of at least 1",
		parse: func(s string) (int, error) { return atLeastOne(whole.parse(s)) },
		other: func(v any) (int, error) { return atLeastOne(whole.other(v)) },
	}
}

// flagKind reads a bool. legacy also takes the JSON strings "true" and
// "false", as the older engine's redisSsl was written, with "" meaning false.
func flagKind(legacy bool) kind[bool] {
	k := kind[bool]{
		want: "true or false",
		parse: func(s string) (bool, error) {
			if legacy && s == "" {
				return false, nil
			}
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return false, errWrongValue
			}
			return b, nil
		},
		fromString: legacy,
		other: func(v any) (bool, error) {
			if b, ok := v.(bool); ok {
				return b, nil
			}
			return false, errWrongValue
		},
	}
	if legacy {
		k.want += `, or the string "true" or "false"`
	}
	return k
}

const wantDuration = `a Go duration such as "15s" or "1h30m"`

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errWrongValue
	}
	return d, nil
}

func durationKind() kind[time.Duration] {
	return kind[time.Duration]{want: wantDuration, parse: parseDuration, fromString: true}
}

// durationsKind reads a list of durations: a JSON array of duration
// strings, or comma-separated durations in the environment.
func durationsKind() kind[[]time.Duration] {
	each := durationKind()
	return kind[[]time.Duration]{
		want: `an array of Go durations such as ["5s", "5m"]`,
		parse: func(s string) ([]time.Duration, error) {
			return readList(strings.Split(s, ","), func(part string) (time.Duration, error) { return each.readEnv(part) })
		},
		other: func(v any) ([]time.Duration, error) {
			list, ok := v.([]any)
			if !ok {
				return nil, errWrongValue
			}
			return readList(list, each.read)
		},
	}
}

// readList reads every item of a list, and names the position of the
// first it cannot read.
func readList[E, T any](items []E, read func(E) (T, error)) ([]T, error) {
	out := make([]T, 0, len(items))
	for i, item := range items {
		v, err := read(item)
		if bad, ok := errors.AsType[*badValue](err); ok {
			bad.at = fmt.Sprintf("[%d]", i)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// brokerKind reads the older engine's broker key, which only ever had one
// working value.
func brokerKind() kind[string] {
	return kind[string]{
		want: `"redis", the only broker`,
		parse: func(s string) (string, error) {
			if s != "redis" {
				return "", errWrongValue
			}
			return s, nil
		},
		fromString: true,
	}
}

// loader builds a Config from a file and the environment.
type loader struct {
	cfg   Config
	table []setting
	// given records where each key was given: its path in the file
	// ("redis.redisDb") or its environment variable.
	given map[string]string
}

// member is one key of a JSON object, in file order.
type member struct {
	name  string
	value json.RawMessage
}

func (l *loader) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark some editors write
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		return syntaxError(data, err)
	}
	if _, ok := probe.(map[string]any); !ok {
		return fmt.Errorf("want a JSON object, got %s", describe(probe))
	}
	return l.readObject(data, "")
}

// syntaxError says where in data the JSON went wrong.
func syntaxError(data []byte, err error) error {
	se, ok := errors.AsType[*json.SyntaxError](err)
	if !ok {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	before := data[:min(int(se.Offset), len(data))] // ends with the offending byte
	line := bytes.Count(before, []byte("\n")) + 1
	column := max(len(before)-bytes.LastIndexByte(before, '\n')-1, 1)
	return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, column, err)
}

// readObject applies the members of one JSON object; prefix is "" at the
// top level and "redis." inside the redis object.
func (l *loader) readObject(raw json.RawMessage, prefix string) error {
	members, err := objectMembers(raw)
	if err != nil {
		return err
	}
	if err := l.checkKnown(members, prefix); err != nil {
		return err
	}
	for _, m := range members {
		if err := l.apply(m, prefix); err != nil {
			return err
		}
	}
	return nil
}

// objectMembers lists the members of a JSON object in order, duplicates
// included (encoding/json would silently keep the last).
func objectMembers(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var members []member
	for dec.More() {
		name, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		members = append(members, member{name: name.(string), value: value})
	}
	return members, nil
}

func (l *loader) apply(m member, prefix string) error {
	path := prefix + m.name
	key := nestedRedis
	s, isSetting := l.lookup(m.name)
	if isSetting {
		key = s.key
	}
	if first, ok := l.given[key]; ok {
		return fmt.Errorf("key %q is given twice: as %q and as %q", key, first, path)
	}
	l.given[key] = path
	if !isSetting {
		return l.readNested(m)
	}
	dec := json.NewDecoder(bytes.NewReader(m.value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("key %q: %w", path, err)
	}
	return wrapKey(s.bind.fromJSON(&l.cfg, v), path, "")
}

// readNested reads the older engine's "redis" object.
func (l *loader) readNested(m member) error {
	var v any
	_ = json.Unmarshal(m.value, &v) // the whole file is valid JSON by now
	if _, ok := v.(map[string]any); !ok {
		return &keyError{key: m.name, err: &badValue{want: "an object of redis* keys", got: describe(v)}}
	}
	return l.readObject(m.value, m.name+".")
}

// wrapKey names the key, and the list position when there is one, in an
// error from reading a value.
func wrapKey(err error, key, from string) error {
	if err == nil {
		return nil
	}
	ke := &keyError{key: key, from: from, err: err}
	if bad, ok := errors.AsType[*badValue](err); ok {
		ke.index = bad.at
	}
	return ke
}

// lookup finds the setting for a key, matched without regard to case.
func (l *loader) lookup(name string) (setting, bool) {
	for _, s := range l.table {
		if strings.EqualFold(s.key, name) {
			return s, true
		}
	}
	return setting{}, false
}

// checkKnown fails on the keys of an object that no setting takes there.
func (l *loader) checkKnown(members []member, prefix string) error {
	var unknown []string
	for _, m := range members {
		s, ok := l.lookup(m.name)
		known := ok && (prefix == "" || s.redis) || !ok && prefix == "" && strings.EqualFold(m.name, nestedRedis)
		if !known {
			unknown = append(unknown, l.describeUnknown(prefix, m.name))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	if len(unknown) == 1 {
		return fmt.Errorf("unknown key %s", unknown[0])
	}
	return fmt.Errorf("unknown keys %s", strings.Join(unknown, ", "))
}

// describeUnknown quotes an unknown key and suggests the key that was
// probably meant.
func (l *loader) describeUnknown(prefix, name string) string {
	s := strconv.Quote(prefix + name)
	if _, ok := l.lookup(name); ok {
		return s + " (allowed at the top level only)"
	}
	for _, known := range l.table {
		if (prefix == "" || known.redis) && editDistance(strings.ToLower(name), strings.ToLower(known.key)) <= 2 {
			return s + fmt.Sprintf(" (did you mean %q?)", known.key)
		}
	}
	return s
}

// editDistance counts the single-letter edits that turn a into b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// readEnv applies the SENDHOOKS_* environment variables that are set.
func (l *loader) readEnv(getenv func(string) string) error {
	for _, s := range l.table {
		if s.env == "" {
			continue
		}
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.bind.fromEnv(&l.cfg, v); err != nil {
			return wrapKey(err, s.key, s.env)
		}
		l.given[s.key] = s.env
	}
	return nil
}

// locate rewrites a Validate error to name the key as it was given: its
// path in the file or the environment variable that set it.
func (l *loader) locate(err error) error {
	ke, ok := errors.AsType[*keyError](err)
	if !ok {
		return err
	}
	located := *ke
	switch given := l.given[ke.key]; {
	case strings.HasPrefix(given, "SENDHOOKS_"):
		located.from = given
	case given != "":
		located.key = given
	}
	return &located
}
