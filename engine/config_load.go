package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
)

// Load builds the engine's configuration: Default, then the JSON file at
// path (none when path is ""), then the SENDHOOKS_* environment variables
// read through getenv (none when getenv is nil; "" counts as not set), then
// Resolve.
//
// The file takes either shape of the older engine: flat, every key at the
// top, or nested, the redis* keys inside a "redis" object. Keys match
// regardless of case, as they did. An unknown key, a value of the wrong
// type or an impossible value is an error naming the key as it was given
// (or the environment variable) and the value.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg, given := Default(), map[string]keyError{} // where each key was given
	err := readFile(path, &cfg, given)
	if err == nil && getenv != nil {
		err = readEnv(getenv, &cfg, given)
	}
	if err == nil {
		cfg, err = cfg.Resolve()
		if ke, ok := errors.AsType[*keyError](err); ok && given[ke.key].key != "" {
			ke.key, ke.from = given[ke.key].key, given[ke.key].from
		}
	}
	if err != nil && path != "" {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	} else if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// setting is one config key and the environment variable that overrides
// it, whose text asJSON turns into the key's JSON value.
type setting struct {
	key, env string
	asJSON   func(string) json.RawMessage
}

// settings is the table of every config key.
func settings() []setting {
	return []setting{
		{"redis", "", nil}, // the older engine's object of redis* keys
		{"redisAddress", "SENDHOOKS_REDIS_ADDRESS", text},
		{"redisPassword", "SENDHOOKS_REDIS_PASSWORD", text},
		{"redisDb", "SENDHOOKS_REDIS_DB", number},
		{"redisSsl", "SENDHOOKS_REDIS_SSL", boolean},
		{"redisCaCert", "SENDHOOKS_REDIS_CA_CERT", text},
		{"redisClientCert", "SENDHOOKS_REDIS_CLIENT_CERT", text},
		{"redisClientKey", "SENDHOOKS_REDIS_CLIENT_KEY", text},
		{"redisStreamName", "SENDHOOKS_REDIS_STREAM_NAME", text},
		{"redisStreamStatusName", "SENDHOOKS_REDIS_STREAM_STATUS_NAME", text},
		{"broker", "", nil},
		{"numWorkers", "SENDHOOKS_NUM_WORKERS", number},
		{"maxPerHost", "SENDHOOKS_MAX_PER_HOST", number},
		{"channelSize", "SENDHOOKS_CHANNEL_SIZE", number},
		{"requestTimeout", "SENDHOOKS_REQUEST_TIMEOUT", text},
		{"retrySchedule", "SENDHOOKS_RETRY_SCHEDULE", list},
		{"visibilityTimeout", "SENDHOOKS_VISIBILITY_TIMEOUT", text},
		{"shutdownTimeout", "SENDHOOKS_SHUTDOWN_TIMEOUT", text},
		{"statusStreamMaxLen", "SENDHOOKS_STATUS_STREAM_MAX_LEN", number},
		{"deadLetterMaxLen", "SENDHOOKS_DEAD_LETTER_MAX_LEN", number},
		{"allowPrivateNetworks", "SENDHOOKS_ALLOW_PRIVATE_NETWORKS", boolean},
		{"secretHashHeaderName", "SENDHOOKS_SECRET_HASH_HEADER_NAME", text},
		{"sendSecretHashHeader", "SENDHOOKS_SEND_SECRET_HASH_HEADER", boolean},
		{"metricsAddress", "SENDHOOKS_METRICS_ADDRESS", text},
		{"consumerGroup", "SENDHOOKS_CONSUMER_GROUP", text},
		{"consumerName", "SENDHOOKS_CONSUMER_NAME", text},
		{"logLevel", "SENDHOOKS_LOG_LEVEL", text},
	}
}

// How the text of an environment variable becomes a JSON value. Text that
// is not of the kind becomes a JSON string, which decode then refuses
// naming it. The older engine's string redisDb and redisSsl ("0", "false",
// "" for either) are read the same way.
func text(s string) json.RawMessage { v, _ := json.Marshal(s); return v }

func number(s string) json.RawMessage {
	if t := cmp.Or(strings.TrimSpace(s), "0"); json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	return text(s)
}

func boolean(s string) json.RawMessage {
	if b, err := strconv.ParseBool(cmp.Or(strings.TrimSpace(s), "false")); err == nil {
		return json.RawMessage(strconv.FormatBool(b))
	}
	return text(s)
}

func list(s string) json.RawMessage { // comma-separated
	items := strings.Split(s, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	v, _ := json.Marshal(items)
	return v
}

// readFile decodes the config file at path, if any, into c.
func readFile(path string, c *Config, given map[string]keyError) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark some editors write
	var top map[string]json.RawMessage
	err = json.Unmarshal(data, &top)
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		before := data[:min(int(se.Offset), len(data))] // ends with the offending byte
		line, column := bytes.Count(before, []byte("\n"))+1, max(len(before)-bytes.LastIndexByte(before, '\n')-1, 1)
		return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, column, err)
	} else if err != nil || top == nil {
		return fmt.Errorf("want a JSON object, got %s", describe(data, false))
	}
	return readObject(top, "", c, given)
}

// readObject decodes the keys of one JSON object into c: the file's top
// level (prefix "") or the older engine's "redis" object (prefix "redis.",
// as the file spells it). given records each key's path in the file.
func readObject(object map[string]json.RawMessage, prefix string, c *Config, given map[string]keyError) error {
	names := slices.Sorted(maps.Keys(object))
	var unknown []string
	for _, name := range names {
		switch key := lookup(name).key; {
		case allowed(key, prefix != ""):
		case key != "":
			unknown = append(unknown, strconv.Quote(prefix+name)+" (allowed at the top level only)")
		default:
			unknown = append(unknown, strconv.Quote(prefix+name)+hint(name, prefix != ""))
		}
	}
	if len(unknown) == 1 {
		return fmt.Errorf("unknown key %s", unknown[0])
	} else if len(unknown) > 1 {
		return fmt.Errorf("unknown keys %s", strings.Join(unknown, ", "))
	}
	for _, name := range names {
		key, at, value := lookup(name).key, keyError{key: prefix + name}, object[name]
		if first, ok := given[key]; ok {
			return fmt.Errorf("key %q is given twice: as %q and as %q", key, first.key, at.key)
		}
		given[key] = at
		var inner map[string]json.RawMessage
		var err error
		switch {
		case key != "redis":
			err = decode(c, key, value, at)
		case json.Unmarshal(value, &inner) == nil && inner != nil:
			err = readObject(inner, at.key+".", c, given)
		default:
			at.err = fmt.Errorf("want an object of redis* keys, got %s", describe(value, false))
			err = &at
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lookup finds the setting of a key, matching its name regardless of case;
// the key is "" when there is none.
func lookup(name string) setting {
	for _, s := range settings() {
		if strings.EqualFold(s.key, name) {
			return s
		}
	}
	return setting{}
}

// allowed says whether key may be given at the top level, or inside the
// "redis" object, which takes the redis* keys.
func allowed(key string, inRedis bool) bool {
	return key != "" && (!inRedis || key != "redis" && strings.HasPrefix(key, "redis"))
}

// hint suggests the key an unknown name probably meant.
func hint(name string, inRedis bool) string {
	for _, s := range settings() {
		if allowed(s.key, inRedis) && levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(s.key)) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", s.key)
		}
	}
	return ""
}

// readEnv applies the SENDHOOKS_* variables that are set, each decoded as
// its key's value in the file would be.
func readEnv(getenv func(string) string, c *Config, given map[string]keyError) error {
	for _, s := range settings() {
		value := ""
		if s.env != "" {
			value = getenv(s.env)
		}
		if value == "" {
			continue
		}
		at := keyError{key: s.key, from: s.env}
		given[s.key] = at
		if s.key != "redisPassword" {
			at.from += "=" + strconv.Quote(value)
		}
		if err := decode(c, s.key, s.asJSON(value), at); err != nil {
			return err
		}
	}
	return nil
}

// configJSON is what a key's value decodes into: the Config, whose json
// tags name the keys, and for the keys whose JSON form is not their field's
// Go type, the fields below, which encoding/json takes over the embedded
// ones of the same name.
type configJSON struct {
	*Config
	*RedisConfig
	Broker             *broker    `json:"broker"`
	RequestTimeout     *duration  `json:"requestTimeout"`
	RetrySchedule      *durations `json:"retrySchedule"`
	VisibilityTimeout  *duration  `json:"visibilityTimeout"`
	ShutdownTimeout    *duration  `json:"shutdownTimeout"`
	StatusStreamMaxLen *count     `json:"statusStreamMaxLen"`
	DeadLetterMaxLen   *count     `json:"deadLetterMaxLen"`
}

// decode gives c one key's JSON value. An error names the key as at does,
// and the value got.
func decode(c *Config, key string, value json.RawMessage, at keyError) error {
	if string(value) == "null" { // encoding/json would leave the field as it is
		at.err = errors.New("want a value, got null")
		return &at
	}
	raw, s := value, ""
	if (key == "redisDb" || key == "redisSsl") && json.Unmarshal(value, &s) == nil {
		raw = lookup(key).asJSON(s) // the older engine wrote them as strings
	}
	object, _ := json.Marshal(map[string]json.RawMessage{key: raw})
	err := json.Unmarshal(object, &configJSON{Config: c, RedisConfig: &c.Redis, Broker: new(broker),
		RequestTimeout: (*duration)(&c.RequestTimeout), VisibilityTimeout: (*duration)(&c.VisibilityTimeout),
		ShutdownTimeout: (*duration)(&c.ShutdownTimeout), RetrySchedule: (*durations)(&c.RetrySchedule),
		StatusStreamMaxLen: (*count)(&c.StatusStreamMaxLen), DeadLetterMaxLen: (*count)(&c.DeadLetterMaxLen)})
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		err = errors.New(map[string]string{"int": "a whole number", "bool": "true or false", "string": "a string"}[te.Type.String()])
	}
	if ke, ok := errors.AsType[*keyError](err); ok { // an item of a list
		at.index, at.err = ke.index, ke.err
	} else if err != nil {
		at.err = fmt.Errorf("want %s, got %s", err, describe(value, key == "redisPassword"))
	} else {
		return nil
	}
	return &at
}

// The value types below read the keys whose JSON form is not their field's
// Go type. Their errors say what a good value looks like; decode adds the
// value got.
type (
	duration  time.Duration   // a Go duration string, "15s"
	durations []time.Duration // an array of them
	count     int             // a whole number of at least 1
	broker    struct{}        // the older engine's broker key, which had one working value
)

func (d *duration) UnmarshalJSON(raw []byte) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
			*d = duration(v)
			return nil
		}
	}
	return errors.New(`a Go duration such as "15s" or "1h30m"`)
}

func (ds *durations) UnmarshalJSON(raw []byte) error {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return errors.New(`an array of Go durations such as ["5s", "5m"]`)
	}
	*ds = make(durations, len(items))
	for i, item := range items {
		if err := (*duration)(&(*ds)[i]).UnmarshalJSON(item); err != nil {
			return &keyError{index: fmt.Sprintf("[%d]", i), err: fmt.Errorf("want %s, got %s", err, describe(item, false))}
		}
	}
	return nil
}

func (n *count) UnmarshalJSON(raw []byte) error {
	if json.Unmarshal(raw, (*int)(n)) != nil || *n < 1 {
		return errors.New("a whole number of at least 1")
	}
	return nil
}

func (*broker) UnmarshalJSON(raw []byte) error {
	if string(raw) != `"redis"` {
		return errors.New(`"redis", the only broker`)
	}
	return nil
}

// describe names a JSON value's type and shows the value unless hide.
func describe(raw []byte, hide bool) string {
	raw, kind := bytes.TrimSpace(raw), "number"
	switch raw[0] {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '{':
		return "an object"
	case '"':
		kind = "string"
	case 't', 'f':
		kind = "bool"
	}
	if hide {
		return kind + " (value hidden)"
	}
	return kind + " " + string(raw)
}
