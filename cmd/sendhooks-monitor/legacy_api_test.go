package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sendhooks/sendhooks/internal/redistest"
)

// TestOldDatabaseThroughTheAPI starts the monitor on a MongoDB the older
// monitor wrote, and asks the API and the dashboard what a migrating user
// asks first: the list, a webhook by its ObjectId and by its externalId,
// the statistics.
func TestOldDatabaseThroughTheAPI(t *testing.T) {
	rs := redistest.Start(t)
	_, _, docs, mongoEnv := oldDatabase(t, 40)
	env, api := monitorEnv(t, rs)
	env = append(env, mongoEnv...)
	var dashboard string
	for _, kv := range env {
		if port, ok := strings.CutPrefix(kv, "DASHBOARD_PORT="); ok {
			dashboard = "http://127.0.0.1:" + port
		}
	}
	startMonitor(t, env)
	eventually(t, time.Minute, "the monitor is ready", func() bool { return httpStatus(api+"/readyz") == http.StatusOK })

	var list struct {
		Data []map[string]any
		Meta struct{ TotalItems int64 }
	}
	body := httpBody(api + "/api/sendhooks/v1/hooks?limit=100")
	if err := json.Unmarshal([]byte(body), &list); err != nil || list.Meta.TotalItems != int64(len(docs)) || len(list.Data) != len(docs) {
		t.Fatalf("list: %v, %d items of %d, want %d: %.500s", err, len(list.Data), list.Meta.TotalItems, len(docs), body)
	}
	// The newest document: the last one written.
	newest := docs[len(docs)-1]
	fields := map[string]any{}
	for _, e := range newest {
		fields[e.Key] = e.Value
	}
	hex := fields["_id"].(bson.ObjectID).Hex()
	for _, id := range []string{hex, fields["externalId"].(string)} {
		var h map[string]any
		body := httpBody(api + "/api/sendhooks/v1/hooks/" + id)
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("GET /hooks/%s: %v: %s", id, err, body)
		}
		want := map[string]any{
			"_id": hex, "id": fields["id"], "status": fields["status"], "url": fields["url"],
			"externalId": fields["externalId"], "created": fields["created"].(time.Time).Format(time.RFC3339Nano),
		}
		for k, v := range want {
			if fmt.Sprint(h[k]) != fmt.Sprint(v) {
				t.Errorf("GET /hooks/%s: %s is %v, want %v", id, k, h[k], v)
			}
		}
	}
	var stats struct{ Total int }
	body = httpBody(api + "/api/sendhooks/v1/stats?from=2024-06-20T00:00:00Z&to=2024-06-21T00:00:00Z&bucket=1h")
	if err := json.Unmarshal([]byte(body), &stats); err != nil || stats.Total != len(docs) {
		t.Errorf("stats: %v, total %d, want %d: %.300s", err, stats.Total, len(docs), body)
	}
	for _, page := range []string{"/", "/hooks/" + hex, "/stats"} {
		if code := httpStatus(dashboard + page); code != http.StatusOK {
			t.Errorf("dashboard %s: %d", page, code)
		}
	}
	if page := httpBody(dashboard + "/hooks/" + hex); !strings.Contains(page, fields["url"].(string)) {
		t.Errorf("dashboard /hooks/%s does not show the url %s", hex, fields["url"])
	}
}
