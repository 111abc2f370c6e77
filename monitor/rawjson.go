package monitor

import (
	"encoding/json"
	"strings"
)

// RawJSON is JSON text kept as a string in MongoDB and written as JSON by
// the API; text that is not valid JSON is written as a JSON string.
type RawJSON string

// MarshalJSON writes the text itself when it is valid JSON.
func (r RawJSON) MarshalJSON() ([]byte, error) {
	if json.Valid([]byte(r)) {
		return []byte(r), nil
	}
	return json.Marshal(string(r))
}

// JobJSON is the job document as the engine read it from the jobs stream.
// The API writes it without its secretHash, which signs the requests.
type JobJSON string

// MarshalJSON writes the job as a JSON object without its secretHash, or
// as a JSON string when it is not a JSON object (a bad job).
//
// Every member named secretHash in any case is redacted: the engine reads
// the name regardless of case (sendhooks.ParseJob) and keeps the last of
// several, so any of them may be the key the requests are signed with.
func (j JobJSON) MarshalJSON() ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(j), &fields); err != nil {
		return json.Marshal(string(j))
	}
	for name := range fields {
		if strings.EqualFold(name, "secretHash") {
			fields[name] = json.RawMessage(`"[redacted]"`)
		}
	}
	return json.Marshal(fields)
}
