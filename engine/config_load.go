package engine

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
)

// setting is one config key: its name in the file, the environment
// variable that overrides it ("" for none) and a pointer to the field it
// sets, which setField decodes the key's value into.
type setting struct {
	key, env string
	field    any
}

// table lists every config key with the field of c it sets.
func (c *Config) table() []setting {
	return []setting{
		{"redisAddress", "SENDHOOKS_REDIS_ADDRESS", &c.Redis.Address},
		{"redisPassword", "SENDHOOKS_REDIS_PASSWORD", &c.Redis.Password},
		{"redisDb", "SENDHOOKS_REDIS_DB", &c.Redis.DB},
		{"redisSsl", "SENDHOOKS_REDIS_SSL", &c.Redis.TLS},
		{"redisCaCert", "SENDHOOKS_REDIS_CA_CERT", &c.Redis.CACert},
		{"redisClientCert", "SENDHOOKS_REDIS_CLIENT_CERT", &c.Redis.ClientCert},
		{"redisClientKey", "SENDHOOKS_REDIS_CLIENT_KEY", &c.Redis.ClientKey},
		{"redisStreamName", "SENDHOOKS_REDIS_STREAM_NAME", &c.JobStream},
		{"redisStreamStatusName", "SENDHOOKS_REDIS_STREAM_STATUS_NAME", &c.StatusStream},
		{"broker", "", new(broker)},
		{"consumerGroup", "SENDHOOKS_CONSUMER_GROUP", &c.ConsumerGroup},
		{"consumerName", "SENDHOOKS_CONSUMER_NAME", &c.ConsumerName},
		{"numWorkers", "SENDHOOKS_NUM_WORKERS", &c.NumWorkers},
		{"channelSize", "SENDHOOKS_CHANNEL_SIZE", &c.BatchSize},
		{"maxPerHost", "SENDHOOKS_MAX_PER_HOST", &c.MaxPerHost},
		{"requestTimeout", "SENDHOOKS_REQUEST_TIMEOUT", &c.RequestTimeout},
		{"retrySchedule", "SENDHOOKS_RETRY_SCHEDULE", &c.RetrySchedule},
		{"visibilityTimeout", "SENDHOOKS_VISIBILITY_TIMEOUT", &c.VisibilityTimeout},
		{"shutdownTimeout", "SENDHOOKS_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout},
		{"statusStreamMaxLen", "SENDHOOKS_STATUS_STREAM_MAX_LEN", (*count)(&c.StatusStreamMaxLen)},
		{"deadLetterMaxLen", "SENDHOOKS_DEAD_LETTER_MAX_LEN", (*count)(&c.DeadLetterMaxLen)},
		{"allowPrivateNetworks", "SENDHOOKS_ALLOW_PRIVATE_NETWORKS", &c.AllowPrivateNetworks},
		{"secretHashHeaderName", "SENDHOOKS_SECRET_HASH_HEADER_NAME", &c.SecretHashHeaderName},
		{"sendSecretHashHeader", "SENDHOOKS_SEND_SECRET_HASH_HEADER", &c.SendSecretHashHeader},
		{"metricsAddress", "SENDHOOKS_METRICS_ADDRESS", &c.MetricsAddress},
		{"logLevel", "SENDHOOKS_LOG_LEVEL", &c.LogLevel},
	}
}

// settings lists every config key, pointing into a Config of no use.
func settings() []setting { return new(Config).table() }

// ConfigPath picks the config file the engine reads: flagValue when given,
// else ./config.json, else /root/config.json (where the older Docker image
// read it), else "" for none.
func ConfigPath(flagValue string) string {
	return firstPresent(flagValue, "./config.json", "/root/config.json")
}

// firstPresent returns explicit when set, else the first candidate that
// exists. One that cannot be checked (a permission error, say) counts as
// present, so that loading it reports the problem.
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
// path (none when ""), then the SENDHOOKS_* variables read through getenv
// (none when nil; "" counts as not set), then Resolve.
//
// The file takes either shape of the older engine: flat, every key at the
// top, or nested, the redis* keys in a "redis" object. Keys match
// regardless of case, as they did. An unknown key, a value of the wrong
// type or an impossible value is an error naming the key as it was given
// (or its environment variable) and the value.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	given := map[string]keyError{} // where each key was given: as the file spelled it, or by which variable
	err := readFile(path, &cfg, given)
	if err == nil && getenv != nil {
		err = readEnv(getenv, &cfg, given)
	}
	if err == nil {
		cfg, err = cfg.Resolve()
		if ke, ok := errors.AsType[*keyError](err); ok && given[ke.key].key != "" {
			ke.key, ke.from = given[ke.key].key, given[ke.key].from // as it was given
		}
	}
	if err != nil && path != "" {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	} else if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// readFile decodes the config file at path, if any, into c; given records
// where each key was given.
func readFile(path string, c *Config, given map[string]keyError) error {
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark some editors write
	err = json.Unmarshal(data, new(any))
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		before := data[:min(int(se.Offset), len(data))] // ends with the offending byte
		line := bytes.Count(before, []byte("\n")) + 1
		column := max(len(before)-bytes.LastIndexByte(before, '\n')-1, 1)
		return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, column, err)
	}
	top, ok := members(data)
	if !ok {
		return fmt.Errorf("want a JSON object, got %s", describe(data, false))
	}
	return readObject(top, "", c, given)
}

// member is one key of a JSON object, as the file spells it, and its value.
type member struct {
	name  string
	value json.RawMessage
}

// members lists the keys of the JSON object in data in file order, a key
// given twice included (encoding/json would keep the last silently); false
// when data, valid JSON, is not an object.
func members(data []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, _ := dec.Token(); t != json.Delim('{') {
		return nil, false
	}
	var all []member
	for dec.More() {
		name, _ := dec.Token() // a string, data being valid
		var value json.RawMessage
		_ = dec.Decode(&value)
		all = append(all, member{name.(string), value})
	}
	return all, true
}

// readObject decodes the keys of one JSON object into c: the file's top
// level (prefix "") or the older engine's "redis" object ("redis.").
func readObject(object []member, prefix string, c *Config, given map[string]keyError) error {
	var unknown []string
	for _, m := range object {
		if key := c.lookup(m.name).key; key == "" {
			unknown = append(unknown, strconv.Quote(prefix+m.name)+hint(m.name, prefix))
		} else if !allowed(key, prefix) {
			unknown = append(unknown, strconv.Quote(prefix+m.name)+" (allowed at the top level only)")
		}
	}
	slices.Sort(unknown)
	if len(unknown) == 1 {
		return fmt.Errorf("unknown key %s", unknown[0])
	} else if len(unknown) > 1 {
		return fmt.Errorf("unknown keys %s", strings.Join(unknown, ", "))
	}
	for _, m := range object {
		s, at := c.lookup(m.name), keyError{key: prefix + m.name}
		if first, ok := given[s.key]; ok {
			return fmt.Errorf("key %q is given twice: as %q and as %q", s.key, first.key, at.key)
		}
		given[s.key] = at
		var err error
		if s.key != "redis" {
			err = decode(s, m.value, at)
		} else if inner, ok := members(m.value); ok {
			err = readObject(inner, at.key+".", c, given)
		} else {
			at.err = fmt.Errorf("want an object of redis* keys, got %s", describe(m.value, false))
			err = &at
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lookup finds the setting of a key, matching its name regardless of case;
// the key is "" when there is none. "redis" is the older engine's object.
func (c *Config) lookup(name string) setting {
	for _, s := range append(c.table(), setting{key: "redis"}) {
		if strings.EqualFold(s.key, name) {
			return s
		}
	}
	return setting{}
}

// allowed says whether key may be given at the top level (prefix ""),
// which takes every key, or in the "redis" object, which takes redis*.
func allowed(key, prefix string) bool {
	return prefix == "" || key != "redis" && strings.HasPrefix(key, "redis")
}

// hint suggests the key an unknown name probably meant.
func hint(name, prefix string) string {
	for _, s := range settings() {
		if allowed(s.key, prefix) && levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(s.key)) <= 2 {
			return fmt.Sprintf(" (did you mean %q?)", s.key)
		}
	}
	return ""
}

// readEnv applies the SENDHOOKS_* variables that are set, each decoded as
// the JSON value its text stands for (asJSON).
func readEnv(getenv func(string) string, c *Config, given map[string]keyError) error {
	for _, s := range c.table() {
		if s.env == "" || getenv(s.env) == "" {
			continue
		}
		text, at := getenv(s.env), keyError{key: s.key, from: s.env}
		given[s.key] = at
		if s.key != "redisPassword" {
			at.from += "=" + strconv.Quote(text)
		}
		if err := decode(s, asJSON(s.field, text), at); err != nil {
			return err
		}
	}
	return nil
}

// asJSON turns text, from an environment variable or one of the older
// engine's strings ("0", "false", "" for either), into the JSON value it
// stands for in field. Text of another kind becomes a JSON string, which
// decode refuses, naming it.
func asJSON(field any, text string) json.RawMessage {
	trimmed := strings.TrimSpace(text)
	switch field.(type) {
	case *int, *count:
		if n := cmp.Or(trimmed, "0"); json.Valid([]byte(n)) {
			return json.RawMessage(n)
		}
	case *bool:
		if b, err := strconv.ParseBool(cmp.Or(trimmed, "false")); err == nil {
			return json.RawMessage(strconv.FormatBool(b))
		}
	case *[]time.Duration: // comma-separated
		items := strings.Split(text, ",")
		for i := range items {
			items[i] = strings.TrimSpace(items[i])
		}
		list, _ := json.Marshal(items)
		return list
	}
	quoted, _ := json.Marshal(text)
	return quoted
}

// emptyMeansDefault lists the keys of the older engine, which read them
// as strings and took "" for their default: so does Load, so that its
// config files load unchanged.
var emptyMeansDefault = []string{
	"redisAddress", "redisDb", "redisSsl", "redisStreamName", "redisStreamStatusName", "secretHashHeaderName",
}

// decode gives the setting's field a JSON value; an error names the key as
// at does, and the value.
func decode(s setting, value json.RawMessage, at keyError) error {
	var text string
	if string(value) == "null" { // encoding/json would leave the field as it is
		at.err = errors.New("want a value, got null")
		return &at
	} else if string(value) == `""` && slices.Contains(emptyMeansDefault, s.key) {
		return nil
	} else if (s.key == "redisDb" || s.key == "redisSsl") && json.Unmarshal(value, &text) == nil {
		value = asJSON(s.field, text) // the older engine wrote them as strings
	}
	err := setField(s.field, value)
	if ke, ok := err.(*keyError); ok { // an item of a list
		at.index, at.err = ke.index, ke.err
	} else if err != nil {
		at.err = fmt.Errorf("want %s, got %s", err, describe(value, s.key == "redisPassword"))
	} else {
		return nil
	}
	return &at
}

// Marker types for the keys that accept less than their field's Go type
// does: the stream caps, and the older engine's broker key, with no field.
type (
	count  int      // a whole number of at least 1
	broker struct{} // "redis", the one broker that worked
)

// setField decodes a JSON value into field, a pointer from the key table.
// Its error says what a good value looks like.
func setField(field any, value json.RawMessage) error {
	var text string
	isText := json.Unmarshal(value, &text) == nil
	switch f := field.(type) {
	case *time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(text))
		if !isText || err != nil {
			return errors.New(`a Go duration such as "15s" or "1h30m"`)
		}
		*f = d
	case *[]time.Duration:
		var items []json.RawMessage
		if json.Unmarshal(value, &items) != nil {
			return errors.New(`an array of Go durations such as ["5s", "5m"]`)
		}
		*f = make([]time.Duration, len(items))
		for i, item := range items {
			if err := setField(&(*f)[i], item); err != nil {
				err = fmt.Errorf("want %s, got %s", err, describe(item, false))
				return &keyError{index: fmt.Sprintf("[%d]", i), err: err}
			}
		}
	case *count:
		if json.Unmarshal(value, (*int)(f)) != nil || *f < 1 {
			return errors.New("a whole number of at least 1")
		}
	case *broker:
		if string(value) != `"redis"` {
			return errors.New(`"redis", the only broker`)
		}
	default: // *int, *bool, *string
		err := json.Unmarshal(value, field)
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok { // it names the Go type
			wants := map[string]string{"int": "a whole number", "bool": "true or false", "string": "a string"}
			return errors.New(wants[te.Type.String()])
		}
		return err
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
