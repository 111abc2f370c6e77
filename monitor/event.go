package monitor

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/sendhooks/sendhooks"
)

// Event is one status event read from the status stream.
type Event struct {
	// EntryID is the status-stream entry id the event was read under.
	EntryID string
	sendhooks.StatusEvent
}

// Key is the id of the hook document the event belongs to: the jobs-stream
// id the engine reports; for the old engine's events, which carry none,
// the producer's webhookId; and for an old engine's event without a
// webhookId (a job that had none), the event's own status-stream entry id,
// so that each such event is a webhook of its own, as the old monitor kept
// it. (A status-stream entry id can equal a jobs-stream id only when two
// streams got an entry in the same millisecond; the two webhooks are then
// one, whose status is the new engine's, see Hook.Apply.)
func (e Event) Key() string {
	switch {
	case e.StreamID != "":
		return e.StreamID
	case e.WebhookID != "":
		return e.WebhookID
	}
	return e.EntryID
}

// intFields are the event's whole-number keys; older producers may have
// written them as strings.
var intFields = map[string]bool{"payloadSize": true, "numberOfTries": true, "attempt": true, "statusCode": true}

// ParseEvent reads the JSON document of a status event in any of the three
// spellings in use: the new engine's, the old engine's (time.String
// timestamps, no attempt numbers) and the old monitor's snake_case keys
// (webhook_id, delivery_error). Whole numbers may be given as strings. An
// event must carry a status; one that names no job (no streamId, no
// webhookId: the old engine wrote "" for a job without a webhookId) is
// kept under its entry id (Event.Key).
func ParseEvent(raw []byte) (sendhooks.StatusEvent, error) {
	// The engine's own spelling decodes straight into the event; anything
	// else (a snake_case key, a number as a string, a key of another
	// producer) fails this strict pass and takes the general one below.
	var ev sendhooks.StatusEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if dec.Decode(&ev) == nil && !dec.More() {
		return checkEvent(ev)
	}
	ev = sendhooks.StatusEvent{}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return ev, fmt.Errorf("not a JSON object: %w", err)
	}
	// The older monitor's snake_case spellings go first, so that where an
	// entry spells a key both ways the engine's spelling wins, the same
	// way every time the entry is read.
	keys := slices.SortedFunc(maps.Keys(fields), func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(b, "_"), strings.Count(a, "_")), cmp.Compare(a, b))
	})
	norm := make(map[string]json.RawMessage, len(fields))
	for _, k := range keys {
		v := fields[k]
		k = camelCase(k)
		if intFields[k] {
			v = unquoteNumber(v)
		}
		if _, dup := norm[k]; dup && bytes.Equal(v, []byte(`""`)) {
			continue // an empty spelling never hides a filled one
		}
		norm[k] = v
	}
	b, err := json.Marshal(norm)
	if err != nil {
		return ev, fmt.Errorf("re-encode: %w", err)
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("not a status event: %w", err)
	}
	return checkEvent(ev)
}

// checkEvent normalises the status and checks what every event needs.
func checkEvent(ev sendhooks.StatusEvent) (sendhooks.StatusEvent, error) {
	ev.Status = sendhooks.Status(strings.ToLower(strings.TrimSpace(string(ev.Status))))
	switch {
	case ev.Status == "":
		return ev, errors.New("the event has no status")
	case ev.Status != sendhooks.StatusSuccess && ev.Status != sendhooks.StatusFailed && ev.Status != sendhooks.StatusRetrying:
		return ev, fmt.Errorf("the event's status %q is none of success, failed, retrying", ev.Status)
	}
	ev.Attempt, ev.NumberOfTries = max(ev.Attempt, 0), max(ev.NumberOfTries, 0)
	return ev, nil
}

// camelCase turns snake_case keys (webhook_id) into the engine's spelling
// (webhookId) and leaves other keys alone.
func camelCase(k string) string {
	if !strings.Contains(k, "_") {
		return k
	}
	var b strings.Builder
	upper := false
	for _, r := range k {
		switch {
		case r == '_':
			upper = b.Len() > 0
		case upper:
			b.WriteRune(unicode.ToUpper(r))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unquoteNumber turns "12" into 12 and "" into 0; other values stay.
func unquoteNumber(v json.RawMessage) json.RawMessage {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return v
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return json.RawMessage("0")
	}
	if n, err := strconv.Atoi(s); err == nil {
		// Re-formatted, not copied: "00" and "+1" parse but are not JSON.
		return json.RawMessage(strconv.Itoa(n))
	}
	return v
}
