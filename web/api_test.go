package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

func TestGetHook(t *testing.T) {
	a := startAPI(t, APIConfig{})
	a.seed(t, engineEvent("1767348000000-0", 1, sendhooks.StatusRetrying, 30), engineEvent("1767348000000-0", 2, sendhooks.StatusSuccess, 20))
	a.seed(t, oldEvent("webhook-1", "https://a.example/x", sendhooks.StatusFailed, "2026-01-01T01:00:00Z", ""))

	status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/webhook-1", nil)
	want := `{"_id":"webhook-1","id":"webhook-1","url":"https://a.example/x","status":"failed",` +
		`"created":"2026-01-01T01:00:00Z","delivered":null,"error":"receiver answered 500","externalId":"webhook-1",` +
		`"messageId":"","payloadSize":10,"numberOfTries":1,"attempts":[],"updatedAt":`
	if status != http.StatusOK || !strings.HasPrefix(body, want) {
		t.Fatalf("old engine's hook: %d\n%s\nwant prefix\n%s", status, body, want)
	}

	var h struct {
		ID         string          `json:"_id"`
		Status     string          `json:"status"`
		Delivered  string          `json:"delivered"`
		ExternalID string          `json:"externalId"`
		Attempts   []any           `json:"attempts"`
		Job        json.RawMessage `json:"job"`
	}
	a.getJSON(t, "/api/sendhooks/v1/hooks/1767348000000-0", &h)
	wantJob := `{"data":{"a":1},"secretHash":"[redacted]","url":"https://new.example/hook","webhookId":"wh-1767348000000-0"}`
	if h.Status != "success" || h.Delivered != "2026-01-02T10:05:00Z" || h.ExternalID != "wh-1767348000000-0" ||
		len(h.Attempts) != 2 || string(h.Job) != wantJob {
		t.Fatalf("new engine's hook: %+v job %s", h, h.Job)
	}

	// The producer's webhookId finds the hook too.
	var byExternal struct {
		ID string `json:"_id"`
	}
	a.getJSON(t, "/api/sendhooks/v1/hooks/wh-1767348000000-0", &byExternal)
	if byExternal.ID != "1767348000000-0" {
		t.Fatalf("by webhookId: got hook %q", byExternal.ID)
	}

	// A producer's id may hold characters that travel escaped in a path.
	a.seed(t, oldEvent("tenant/7 order#1", "https://a.example/y", sendhooks.StatusSuccess, "2026-01-01T02:00:00Z", "2026-01-01T02:00:01Z"))
	var escaped struct {
		ID string `json:"_id"`
	}
	a.getJSON(t, "/api/sendhooks/v1/hooks/"+url.PathEscape("tenant/7 order#1"), &escaped)
	if escaped.ID != "tenant/7 order#1" {
		t.Fatalf("escaped id: got hook %q", escaped.ID)
	}

	status, _, body = a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/nope", nil)
	if want := `{"code":"HOOK_NOT_FOUND","description":"no webhook has the id \"nope\""}`; status != http.StatusNotFound || body != want {
		t.Fatalf("unknown id: %d %s, want 404 %s", status, body, want)
	}
}

func TestCORS(t *testing.T) {
	a := startAPI(t, APIConfig{AllowedOrigins: []string{"https://dash.example"}, Token: "t0ken"})
	tests := []struct {
		method, origin, wantAllow string
		wantStatus                int
	}{
		{http.MethodGet, "https://dash.example", "https://dash.example", http.StatusOK},
		{http.MethodGet, "https://evil.example", "", http.StatusOK},
		{http.MethodOptions, "https://dash.example", "https://dash.example", http.StatusNoContent},
		{http.MethodOptions, "https://evil.example", "", http.StatusNoContent},
	}
	for _, tt := range tests {
		h := http.Header{"Origin": {tt.origin}}
		if tt.method == http.MethodOptions {
			h.Set("Access-Control-Request-Method", http.MethodGet)
			h.Set("Access-Control-Request-Headers", "authorization")
		}
		status, header, _ := a.do(t, tt.method, "/api/sendhooks/v1/hooks", h)
		if status != tt.wantStatus || header.Get("Access-Control-Allow-Origin") != tt.wantAllow {
			t.Errorf("%s from %s: %d, Allow-Origin %q; want %d, %q", tt.method, tt.origin, status,
				header.Get("Access-Control-Allow-Origin"), tt.wantStatus, tt.wantAllow)
		}
	}

	// Without ALLOWED_ORIGINS no origin gets the headers.
	b := startAPI(t, APIConfig{})
	if _, header, _ := b.do(t, http.MethodGet, "/api/sendhooks/v1/hooks", http.Header{"Origin": {"https://dash.example"}}); header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origins configured, got Allow-Origin %q", header.Get("Access-Control-Allow-Origin"))
	}
}

func TestAuth(t *testing.T) {
	a := startAPI(t, APIConfig{Token: "s3cret-token"})
	unauthorized := `{"code":"UNAUTHORIZED","description":"a valid bearer token is required: Authorization: Bearer \u003cSENDHOOKS_API_TOKEN\u003e"}`
	paths := []string{"/api/sendhooks/v1/hooks", "/api/sendhooks/v1/hooks/x", "/api/sendhooks/v1/stats", "/metrics"}
	for _, p := range paths {
		for _, auth := range []string{"", "Bearer wrong", "s3cret-token", "Basic s3cret-token", "Bearer s3cret-token2"} {
			req, _ := http.NewRequest(http.MethodGet, a.srv.URL+p, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || string(body) != unauthorized {
				t.Errorf("%s with %q: %d %s, want 401", p, auth, resp.StatusCode, body)
			}
		}
	}
	// With the token (a.do sends it) every route answers; health needs none.
	wantStatus := map[string]int{paths[0]: 200, paths[1]: 404, paths[2]: 200, paths[3]: 200}
	for _, p := range paths {
		if status, _, body := a.do(t, http.MethodGet, p, nil); status != wantStatus[p] {
			t.Errorf("%s with the token: %d %s", p, status, body)
		}
	}
	a.token = ""
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _, _ := a.do(t, http.MethodGet, p, nil); status != http.StatusOK {
			t.Errorf("%s without token: %d, want 200", p, status)
		}
	}

	// Without a token configured the API is open.
	b := startAPI(t, APIConfig{})
	if status, _, _ := b.do(t, http.MethodGet, paths[0], nil); status != http.StatusOK {
		t.Errorf("open API: %d, want 200", status)
	}
}

// jobEntries returns the jobs stream's entries.
func jobEntries(t *testing.T, a *testAPI) []redis.XMessage {
	t.Helper()
	msgs, err := a.rdb.XRange(context.Background(), jobStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func TestRetryHook(t *testing.T) {
	a := startAPI(t, APIConfig{})
	const sid = "1767348000000-0"
	a.seed(t,
		engineEvent(sid, 1, sendhooks.StatusRetrying, 10),
		engineEvent(sid, 2, sendhooks.StatusRetrying, 10),
		engineEvent(sid, 3, sendhooks.StatusFailed, 10),
		engineEvent("1767348000001-0", 1, sendhooks.StatusRetrying, 10),
		oldEvent("old-1", "https://a.example/x", sendhooks.StatusFailed, "2026-01-01T01:00:00Z", ""),
	)
	status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/"+sid+"/retry", nil)
	msgs := jobEntries(t, a)
	if len(msgs) != 1 {
		t.Fatalf("%d job entries, want 1", len(msgs))
	}
	want := `{"id":"` + sid + `","stream":"hooks","entryId":"` + msgs[0].ID + `","attempt":4}`
	if status != http.StatusAccepted || body != want {
		t.Fatalf("retry: %d %s, want 202 %s", status, body, want)
	}
	wantValues := map[string]any{
		sendhooks.StreamField:   `{"url":"https://new.example/hook","webhookId":"wh-` + sid + `","data":{"a":1},"secretHash":"s3cret"}`,
		sendhooks.FieldOrigin:   sid,
		sendhooks.FieldAttempt:  "4",
		sendhooks.FieldRunStart: "4",
	}
	if !reflect.DeepEqual(msgs[0].Values, wantValues) {
		t.Fatalf("job entry %v, want %v", msgs[0].Values, wantValues)
	}

	refusals := []struct {
		id, code, description string
		status                int
	}{
		{"old-1", "NOT_RETRIABLE", "hook cannot be retried: the engine did not report the job's payload (an older engine, or a job over 4 MiB, which is not kept)", http.StatusConflict},
		{"1767348000001-0", "ALREADY_QUEUED", "hook is queued for a retry already: the engine is still retrying it on its schedule", http.StatusConflict},
		{"nope", "HOOK_NOT_FOUND", `no webhook has the id "nope"`, http.StatusNotFound},
	}
	for _, r := range refusals {
		status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/"+r.id+"/retry", nil)
		if want := errorBody(t, r.code, r.description); status != r.status || body != want {
			t.Errorf("retry %s: %d %s, want %d %s", r.id, status, body, r.status, want)
		}
	}
	if n := len(jobEntries(t, a)); n != 1 {
		t.Fatalf("%d job entries after refusals, want 1", n)
	}
}

func TestRetryFailedHooksInBulk(t *testing.T) {
	a := startAPI(t, APIConfig{})
	a.seed(t,
		engineEvent("1767348000000-0", 2, sendhooks.StatusFailed, 10),
		engineEvent("1767348000001-0", 5, sendhooks.StatusFailed, 10),
		engineEvent("1767348000002-0", 1, sendhooks.StatusSuccess, 10),
		oldEvent("old-1", "https://new.example/hook", sendhooks.StatusFailed, "2026-01-02T10:00:00Z", ""),
		oldEvent("other", "https://other.example/", sendhooks.StatusFailed, "2026-01-02T10:00:00Z", ""),
	)
	status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/retry?search=new.example&createdStartDate=2026-01-02", nil)
	if status != http.StatusAccepted {
		t.Fatalf("bulk retry: %d %s", status, body)
	}
	var ans bulkRetryAnswer
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Matched != 3 || ans.Queued != 2 || ans.Skipped != 1 || ans.Truncated || len(ans.Hooks) != 2 {
		t.Fatalf("bulk retry answered %s", body)
	}
	got := map[string]string{}
	for _, m := range jobEntries(t, a) {
		got[m.Values[sendhooks.FieldOrigin].(string)] = m.Values[sendhooks.FieldAttempt].(string)
	}
	if want := map[string]string{"1767348000000-0": "3", "1767348000001-0": "6"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("queued origin→attempt %v, want %v", got, want)
	}

	status, _, body = a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks/retry?status=success", nil)
	want := errorBody(t, "BAD_PARAMETER", `status must be failed or left out: only failed webhooks are retried in bulk, got "success"`)
	if status != http.StatusBadRequest || body != want {
		t.Fatalf("bulk retry of successes: %d %s", status, body)
	}
}

// TestEmptyHookIDFindsNothing sends the retry of one webhook an empty id:
// the engine's hooks carry no messageId when the producer gave none, and
// "" must not find (and retry) one of them.
func TestEmptyHookIDFindsNothing(t *testing.T) {
	a := startAPI(t, APIConfig{})
	a.seed(t, engineEvent("1767348000000-0", 2, sendhooks.StatusFailed, 10))
	status, _, body := a.do(t, http.MethodPost, "/api/sendhooks/v1/hooks//retry", nil)
	if want := errorBody(t, "HOOK_NOT_FOUND", `no webhook has the id ""`); status != http.StatusNotFound || body != want {
		t.Errorf("POST /hooks//retry: %d %s, want 404 %s", status, body, want)
	}
	if n := len(jobEntries(t, a)); n != 0 {
		t.Fatalf("%d job entries queued by the empty id, want 0", n)
	}
}

// TestJobSecretHashRedactedInAnyCase serves a job whose secretHash is
// spelled in other cases, twice: the engine reads the member in any case
// (and keeps the last of duplicates), so every such member is the signing
// key and none is served in clear, by the API or the dashboard.
func TestJobSecretHashRedactedInAnyCase(t *testing.T) {
	a := startAPI(t, APIConfig{})
	ev := engineEvent("1767348000000-0", 2, sendhooks.StatusFailed, 10)
	ev.Job = `{"url":"https://new.example/hook","data":{"secretHash":"in the payload"},"SecretHash":"k-one",` +
		`"SECRETHASH":"k-two","secret\u0048ASH":"k-three","secretHashes":"not a key"}`
	a.seed(t, ev)
	want := `{"SECRETHASH":"[redacted]","SecretHash":"[redacted]","data":{"secretHash":"in the payload"},` +
		`"secretHASH":"[redacted]","secretHashes":"not a key","url":"https://new.example/hook"}`
	var one struct {
		Job json.RawMessage `json:"job"`
	}
	a.getJSON(t, "/api/sendhooks/v1/hooks/1767348000000-0", &one)
	if string(one.Job) != want {
		t.Errorf("GET /hooks/{id}: job %s, want %s", one.Job, want)
	}
	var list struct {
		Data []struct {
			Job json.RawMessage `json:"job"`
		} `json:"data"`
	}
	a.getJSON(t, "/api/sendhooks/v1/hooks", &list)
	if len(list.Data) != 1 || string(list.Data[0].Job) != want {
		t.Errorf("GET /hooks: %d hooks, the first with the job %s; want one with %s", len(list.Data), list.Data[0].Job, want)
	}

	// The dashboard shows the job's data alone.
	d := startDashboard(t, nil)
	(&testAPI{store: d.store}).seed(t, ev)
	status, _, body := d.get(t, "/hooks/1767348000000-0")
	if status != http.StatusOK || !strings.Contains(body, "in the payload") {
		t.Fatalf("detail page: %d, without the payload\n%s", status, body)
	}
	for _, key := range []string{"k-one", "k-two", "k-three"} {
		if strings.Contains(body, key) {
			t.Errorf("the detail page shows the secretHash %q", key)
		}
	}
}
