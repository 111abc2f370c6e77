package monitor

import (
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	got, err := LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := Config{
		BackendPort: 5002, DashboardPort: 3000,
		MongoURI: "mongodb://127.0.0.1:27017/sendhooks", MongoDatabase: "sendhooks",
		RedisHost: "127.0.0.1", RedisPort: 6379,
		StreamKey: "hooks-status", JobStreamKey: "hooks",
		ConsumerGroup: "sendhooks-monitor", ConsumerName: host,
		LogLevel: slog.LevelInfo, LogFormat: "json", Retention: 720 * time.Hour,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadConfigFromEnvironment(t *testing.T) {
	got, err := LoadConfig(envOf(map[string]string{
		"BACKEND_PORT": "6000", "DASHBOARD_PORT": "3001", "MONGODB_URI": "mongodb://mongo:27017/other?retryWrites=true",
		"REDIS_HOST": "redis", "REDIS_PORT": "6380", "REDIS_PASSWORD": "pw", "REDIS_DB": "2", "REDIS_TLS": "true",
		"STREAM_KEY": "st", "JOB_STREAM_KEY": "jobs", "ALLOWED_ORIGINS": " https://a.example, ,https://b.example ",
		"SENDHOOKS_API_TOKEN": "tok", "CONSUMER_GROUP": "g", "CONSUMER_NAME": "c", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
		"RETENTION": "48h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		BackendPort: 6000, DashboardPort: 3001,
		MongoURI: "mongodb://mongo:27017/other?retryWrites=true", MongoDatabase: "other",
		RedisHost: "redis", RedisPort: 6380, RedisPassword: "pw", RedisDB: 2, RedisTLS: true,
		StreamKey: "st", JobStreamKey: "jobs", AllowedOrigins: []string{"https://a.example", "https://b.example"},
		APIToken: "tok", ConsumerGroup: "g", ConsumerName: "c", LogLevel: slog.LevelDebug, LogFormat: "text",
		Retention: 48 * time.Hour,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if want.RedisAddr() != "redis:6380" {
		t.Fatalf("RedisAddr %q", want.RedisAddr())
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	tests := map[string]string{
		"BACKEND_PORT":   `BACKEND_PORT must be a whole number from 1 to 65535, got "0"`,
		"DASHBOARD_PORT": `DASHBOARD_PORT must be a whole number from 1 to 65535, got "0"`,
		"REDIS_PORT":     `REDIS_PORT must be a whole number from 1 to 65535, got "0"`,
		"REDIS_DB":       `REDIS_DB must be a whole number from 0 to 1048576, got "-1"`,
		"REDIS_TLS":      `REDIS_TLS must be true or false, got "maybe"`,
		"MONGODB_URI":    `MONGODB_URI is not a MongoDB connection string: `,
		"LOG_LEVEL":      `LOG_LEVEL must be debug, info, warn or error, got "loud"`,
		"LOG_FORMAT":     `LOG_FORMAT must be json or text, got "xml"`,
		"RETENTION":      `RETENTION must be a Go duration such as 720h, or 0 to keep every webhook, got "30 days"`,
	}
	bad := map[string]string{
		"BACKEND_PORT": "0", "DASHBOARD_PORT": "0", "REDIS_PORT": "0", "REDIS_DB": "-1", "REDIS_TLS": "maybe",
		"MONGODB_URI": "http://nope", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "RETENTION": "30 days",
	}
	for name, want := range tests {
		_, err := LoadConfig(envOf(map[string]string{name: bad[name]}))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s=%s: error %v, want %q…", name, bad[name], err, want)
		}
	}
}

func TestLoadConfigStores(t *testing.T) {
	got, err := LoadConfig(envOf(map[string]string{"SQLITE_PATH": "/var/lib/sendhooks/monitor.db", "RETENTION": "0"}))
	if err != nil || got.SQLitePath != "/var/lib/sendhooks/monitor.db" || got.Retention != 0 {
		t.Fatalf("SQLITE_PATH and RETENTION=0: %+v, %v", got, err)
	}
	_, err = LoadConfig(envOf(map[string]string{"SQLITE_PATH": "/tmp/m.db", "MONGODB_URI": "mongodb://mongo:27017/x"}))
	want := `SQLITE_PATH ("/tmp/m.db") and MONGODB_URI ("mongodb://mongo:27017/x") are both set; set one: SQLITE_PATH for an SQLite file, MONGODB_URI for MongoDB`
	if err == nil || err.Error() != want {
		t.Fatalf("both stores: %v, want %q", err, want)
	}
	for _, bad := range []string{"-1h", "1 day", "forever"} {
		if _, err := LoadConfig(envOf(map[string]string{"RETENTION": bad})); err == nil || !strings.Contains(err.Error(), "RETENTION") {
			t.Errorf("RETENTION=%s: %v", bad, err)
		}
	}
}
