package monitor

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/sendhooks/sendhooks"
)

// Config is the monitor's configuration. LoadConfig reads it from the
// environment under the old Node monitor's variable names plus new ones.
type Config struct {
	BackendPort   int    // BACKEND_PORT: the JSON API's port
	DashboardPort int    // DASHBOARD_PORT: the dashboard's port
	MongoURI      string // MONGODB_URI
	MongoDatabase string // the database named in MongoURI's path
	// SQLitePath, when set (SQLITE_PATH), is the SQLite file the monitor
	// keeps its webhooks in instead of MongoDB.
	SQLitePath string
	// Retention is how long webhooks are kept after they were created
	// (RETENTION, a Go duration); 0 keeps them all.
	Retention     time.Duration
	RedisHost     string // REDIS_HOST
	RedisPort     int    // REDIS_PORT
	RedisPassword string // REDIS_PASSWORD
	RedisDB       int    // REDIS_DB
	RedisTLS      bool   // REDIS_TLS
	StreamKey     string // STREAM_KEY: the status stream read
	JobStreamKey  string // JOB_STREAM_KEY: the jobs stream retries are written to
	// AllowedOrigins are the browser origins allowed cross-origin access
	// (ALLOWED_ORIGINS, comma separated); none when empty.
	AllowedOrigins []string
	// APIToken, when set (SENDHOOKS_API_TOKEN), is the bearer token every
	// API route but the health checks requires.
	APIToken      string
	ConsumerGroup string     // CONSUMER_GROUP
	ConsumerName  string     // CONSUMER_NAME: unique per monitor process
	LogLevel      slog.Level // LOG_LEVEL: debug, info, warn or error
	LogFormat     string     // LOG_FORMAT: json or text
}

// Defaults of the settings that have one.
const (
	DefaultBackendPort   = 5002
	DefaultDashboardPort = 3000
	DefaultMongoURI      = "mongodb://127.0.0.1:27017/sendhooks"
	DefaultMongoDatabase = "sendhooks"
	DefaultConsumerGroup = "sendhooks-monitor"
	DefaultRetention     = 720 * time.Hour
)

// LoadConfig reads the configuration from getenv (os.Getenv in production).
// Its errors name the variable at fault.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "monitor"
	}
	if getenv("SQLITE_PATH") != "" && getenv("MONGODB_URI") != "" {
		return Config{}, fmt.Errorf("SQLITE_PATH (%q) and MONGODB_URI (%q) are both set; set one: SQLITE_PATH for an SQLite file, MONGODB_URI for MongoDB", getenv("SQLITE_PATH"), getenv("MONGODB_URI"))
	}
	c := Config{
		MongoURI:       env("MONGODB_URI", DefaultMongoURI),
		SQLitePath:     strings.TrimSpace(getenv("SQLITE_PATH")),
		RedisHost:      env("REDIS_HOST", "127.0.0.1"),
		RedisPassword:  getenv("REDIS_PASSWORD"),
		StreamKey:      env("STREAM_KEY", sendhooks.DefaultStatusStream),
		JobStreamKey:   env("JOB_STREAM_KEY", sendhooks.DefaultJobStream),
		AllowedOrigins: splitList(getenv("ALLOWED_ORIGINS")),
		APIToken:       strings.TrimSpace(getenv("SENDHOOKS_API_TOKEN")),
		ConsumerGroup:  env("CONSUMER_GROUP", DefaultConsumerGroup),
		ConsumerName:   env("CONSUMER_NAME", host),
		LogFormat:      env("LOG_FORMAT", "json"),
	}
	ports := []struct {
		name string
		def  int
		dst  *int
	}{
		{"BACKEND_PORT", DefaultBackendPort, &c.BackendPort},
		{"DASHBOARD_PORT", DefaultDashboardPort, &c.DashboardPort},
		{"REDIS_PORT", 6379, &c.RedisPort},
	}
	for _, p := range ports {
		if *p.dst, err = envInt(env, p.name, p.def, 1, 65535); err != nil {
			return Config{}, err
		}
	}
	if c.RedisDB, err = envInt(env, "REDIS_DB", 0, 0, 1<<20); err != nil {
		return Config{}, err
	}
	if c.RedisTLS, err = strconv.ParseBool(env("REDIS_TLS", "false")); err != nil {
		return Config{}, fmt.Errorf("REDIS_TLS must be true or false, got %q", getenv("REDIS_TLS"))
	}
	cs, err := connstring.Parse(c.MongoURI)
	if err != nil {
		return Config{}, fmt.Errorf("MONGODB_URI is not a MongoDB connection string: %w", err)
	}
	c.MongoDatabase = cs.Database
	if c.MongoDatabase == "" {
		c.MongoDatabase = DefaultMongoDatabase
	}
	if c.Retention, err = time.ParseDuration(env("RETENTION", DefaultRetention.String())); err != nil || c.Retention < 0 {
		return Config{}, fmt.Errorf("RETENTION must be a Go duration such as 720h, or 0 to keep every webhook, got %q", getenv("RETENTION"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		return Config{}, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", getenv("LOG_LEVEL"))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return Config{}, fmt.Errorf("LOG_FORMAT must be json or text, got %q", c.LogFormat)
	}
	return c, nil
}

// RedisAddr is REDIS_HOST:REDIS_PORT.
func (c Config) RedisAddr() string {
	return c.RedisHost + ":" + strconv.Itoa(c.RedisPort)
}

func envInt(env func(string, string) string, name string, def, lo, hi int) (int, error) {
	s := env(name, strconv.Itoa(def))
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be a whole number from %d to %d, got %q", name, lo, hi, s)
	}
	return n, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
