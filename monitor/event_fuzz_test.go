package monitor

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sendhooks/sendhooks"
)

// FuzzParseEvent feeds ParseEvent arbitrary status-stream entries. The
// committed corpus (testdata/fuzz/FuzzParseEvent) holds the three spellings
// of testdata/status-events.jsonl and broken variants of them.
//
// Properties: ParseEvent never panics; it gives the same answer every time;
// a refused entry gets an error that says what is wrong; an accepted one
// has a hook to go to (its own entry id when it names no job), carries one of the statuses, has no negative counts, and
// survives what the store does with it: encoded (within the storage
// bounds) and read again, it is the same event.
func FuzzParseEvent(f *testing.F) {
	fixture, err := os.ReadFile("testdata/status-events.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for line := range bytes.Lines(fixture) {
		f.Add(bytes.TrimSpace(line))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := ParseEvent(raw)
		again, errAgain := ParseEvent(raw)
		if (err == nil) != (errAgain == nil) || !sameEvent(t, ev, again) {
			t.Fatalf("ParseEvent(%q) is not deterministic: %+v (%v), then %+v (%v)", raw, ev, err, again, errAgain)
		}
		if err != nil {
			checkRefusal(t, raw, err)
			return
		}
		// An event that names no job is kept under its entry id.
		if key := (Event{EntryID: "1-0", StatusEvent: ev}).Key(); key == "" || key == "1-0" && (ev.StreamID != "" || ev.WebhookID != "") {
			t.Fatalf("ParseEvent(%q) gives the key %q to streamId %q, webhookId %q", raw, key, ev.StreamID, ev.WebhookID)
		}
		if ev.Attempt < 0 || ev.NumberOfTries < 0 {
			t.Fatalf("ParseEvent(%q): negative attempt %d or numberOfTries %d", raw, ev.Attempt, ev.NumberOfTries)
		}

		// The store keeps the event as this JSON and parses it again
		// whenever it rebuilds the hook (Store.rebuild): an event it
		// cannot read back would fail every later write of that hook.
		stored, err := json.Marshal(fitForStorage(ev))
		if err != nil {
			t.Fatalf("ParseEvent(%q) accepted an event the store cannot encode: %v", raw, err)
		}
		back, err := ParseEvent(stored)
		if err != nil {
			t.Fatalf("ParseEvent(%q) accepted an event the store cannot read back: stored %s: %v", raw, stored, err)
		}
		if !sameEvent(t, fitForStorage(ev), back) {
			t.Fatalf("ParseEvent(%q) = %+v, but stored as %s it reads back as %+v", raw, ev, stored, back)
		}
		if !knownStatus(ev.Status) {
			t.Fatalf("ParseEvent(%q) accepted the status %q, which is none of success, failed, retrying", raw, ev.Status)
		}
	})
}

// refusalReasons are the beginnings of ParseEvent's errors, each naming
// what is wrong with the entry; one ending in ": " must be followed by the
// details (which field, which byte).
var refusalReasons = []string{
	"not a JSON object: ",
	"not a status event: ",
	"the event has no status",
	"the event's status ",
}

func checkRefusal(t *testing.T, raw []byte, err error) {
	t.Helper()
	msg := err.Error()
	for _, reason := range refusalReasons {
		if strings.HasPrefix(msg, reason) && (!strings.HasSuffix(reason, ": ") || len(msg) > len(reason)) {
			return
		}
	}
	t.Fatalf("ParseEvent(%q): error %q does not say what is wrong with the event", raw, msg)
}

func knownStatus(s sendhooks.Status) bool {
	return s == sendhooks.StatusSuccess || s == sendhooks.StatusFailed || s == sendhooks.StatusRetrying
}

// sameEvent compares two events by their JSON, which covers every field,
// compares timestamps as instants and texts as the store writes them
// (invalid UTF-8 replaced).
func sameEvent(t *testing.T, a, b sendhooks.StatusEvent) bool {
	t.Helper()
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		t.Fatalf("encode events: %v, %v", errA, errB)
	}
	return bytes.Equal(ja, jb)
}
