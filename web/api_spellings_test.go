package web

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/sendhooks/sendhooks/monitor"
)

// TestOlderSpellingsInAPI stores the shared fixture's events (the old
// engine's and the old monitor's spellings) and reads them back through
// the API.
func TestOlderSpellingsInAPI(t *testing.T) {
	a := startAPI(t, APIConfig{})
	raw, err := os.ReadFile("../monitor/testdata/status-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var batch []monitor.Event
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		ev, err := monitor.ParseEvent(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		batch = append(batch, monitor.Event{StatusEvent: ev})
	}
	if err := a.store.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"webhook-12345": `{"_id":"webhook-12345","id":"webhook-12345","url":"https://receiver.example/hook","status":"success",` +
			`"created":"2024-05-24T23:06:16.053Z","delivered":"2024-05-24T23:06:16.181Z","error":"","externalId":"webhook-12345",` +
			`"messageId":"","payloadSize":245,"numberOfTries":1,"attempts":[],"updatedAt":"*"}`,
		"webhook-12346": `{"_id":"webhook-12346","id":"webhook-12346","url":"https://receiver.example/hook","status":"failed",` +
			`"created":"2024-05-24T23:07:01.5Z","delivered":null,"error":"webhook sending failed with status: 500, response body: ",` +
			`"externalId":"webhook-12346","messageId":"","payloadSize":245,"numberOfTries":5,"attempts":[],"updatedAt":"*"}`,
		"webhook-12347": `{"_id":"webhook-12347","id":"webhook-12347","url":"https://receiver.example/hook","status":"success",` +
			`"created":"2024-05-25T10:00:00Z","delivered":"2024-05-25T10:00:01Z","error":"","externalId":"webhook-12347",` +
			`"messageId":"","payloadSize":0,"numberOfTries":1,"attempts":[],"updatedAt":"*"}`,
	}
	updatedAt := regexp.MustCompile(`"updatedAt":"[^"]+"`)
	for id, w := range want {
		status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/"+id, nil)
		body = updatedAt.ReplaceAllString(body, `"updatedAt":"*"`)
		if status != http.StatusOK || body != w {
			t.Errorf("%s: %d\n got %s\nwant %s", id, status, body, w)
		}
	}
	var list listBody
	a.getJSON(t, "/api/sendhooks/v1/hooks", &list)
	if got := list.ids(); len(got) != 3 || got[0] != "webhook-12347" || got[2] != "webhook-12345" {
		t.Errorf("list: %v", got)
	}
}
