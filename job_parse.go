package sendhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseJob decodes and checks the JSON document of a job. Its error is a
// *BadJobError that names what is wrong.
//
// It reads the same documents as encoding/json would into Job (key names
// match regardless of case, a later duplicate key wins, unknown keys are
// ignored) but in one validating pass and a cheap split of the top-level
// members, without decoding data and metaData at all: it runs once per
// delivery, and those are passed on byte for byte anyway.
func ParseJob(raw []byte) (Job, error) {
	var job Job
	if len(bytes.TrimSpace(raw)) == 0 {
		return job, badJob("the %q field is empty", StreamField)
	}
	if !json.Valid(raw) {
		// Let encoding/json say where and why.
		var probe any
		err := json.Unmarshal(raw, &probe)
		return job, badJob("the %q field is not a valid job JSON object: %v", StreamField, err)
	}
	body := bytes.TrimSpace(raw)
	if body[0] != '{' {
		return job, badJob("the %q field is not a valid job JSON object: it is a JSON %s", StreamField, kindOf(body[0]))
	}
	err := eachMember(body, func(key, value []byte) error {
		switch {
		case keyIs(key, "url"):
			return readString(value, "url", &job.URL)
		case keyIs(key, "webhookId"):
			return readString(value, "webhookId", &job.WebhookID)
		case keyIs(key, "messageId"):
			return readString(value, "messageId", &job.MessageID)
		case keyIs(key, "secretHash"):
			return readString(value, "secretHash", &job.SecretHash)
		case keyIs(key, "data"):
			job.Data = rawValue(value)
		case keyIs(key, "metaData"):
			job.MetaData = rawValue(value)
		}
		return nil
	})
	if err != nil {
		return job, badJob("the %q field is not a valid job JSON object: %v", StreamField, err)
	}
	if err := job.Validate(); err != nil {
		return job, err
	}
	return job, nil
}

// keyIs matches a raw (still quoted) member name the way encoding/json
// matches struct fields: exactly, or else regardless of case.
func keyIs(quoted []byte, name string) bool {
	key := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(key, '\\') >= 0 {
		var s string
		if json.Unmarshal(quoted, &s) != nil {
			return false
		}
		return strings.EqualFold(s, name)
	}
	return string(key) == name || strings.EqualFold(string(key), name)
}

// readString sets *dst from a JSON string value; null leaves it as it is,
// as encoding/json does.
func readString(value []byte, key string, dst *string) error {
	switch value[0] {
	case 'n':
		return nil
	case '"':
	default:
		return fmt.Errorf("%q must be a string, got a JSON %s", key, kindOf(value[0]))
	}
	inner := value[1 : len(value)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		*dst = string(inner)
		return nil
	}
	return json.Unmarshal(value, dst)
}

// rawValue keeps a member's value as json.RawMessage does: a copy, with
// null kept as the literal.
func rawValue(value []byte) json.RawMessage {
	return append(json.RawMessage(nil), value...)
}

func kindOf(first byte) string {
	switch first {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// eachMember calls fn with the raw name (quotes included) and raw value of
// every member of obj, a JSON object that json.Valid has accepted.
func eachMember(obj []byte, fn func(key, value []byte) error) error {
	i := skipSpace(obj, 1) // past '{'
	for i < len(obj) && obj[i] != '}' {
		keyEnd := endOfValue(obj, i)
		key := obj[i:keyEnd]
		i = skipSpace(obj, keyEnd)
		i = skipSpace(obj, i+1) // past ':'
		valueEnd := endOfValue(obj, i)
		if err := fn(key, obj[i:valueEnd]); err != nil {
			return err
		}
		i = skipSpace(obj, valueEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfValue returns the index just past the valid JSON value starting at i.
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = endOfString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// endOfString returns the index just past the JSON string starting at i.
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}
