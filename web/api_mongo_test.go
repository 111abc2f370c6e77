package web

import (
	"context"
	"net/http"
	"testing"

	"github.com/sendhooks/sendhooks/internal/mongotest"
	"github.com/sendhooks/sendhooks/monitor/mongo"
)

// TestServerFaultAndReadiness stops the MongoDB-wire server under a
// running API: requests answer 500 SERVER_ERROR without details, /readyz
// 503, /healthz 200; once the server is back the API is ready again.
func TestServerFaultAndReadiness(t *testing.T) {
	ms := mongotest.Start(t)
	store, err := mongo.Open(ms.URI(), ms.Database())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	a := startAPIOn(t, store, APIConfig{})
	if status, _, body := a.do(t, http.MethodGet, "/readyz", nil); status != http.StatusOK || body != `{"status":"ready"}` {
		t.Fatalf("readyz: %d %s", status, body)
	}
	ms.Stop(t)
	status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/x", nil)
	if want := `{"code":"SERVER_ERROR","description":"Internal Server Error"}`; status != http.StatusInternalServerError || body != want {
		t.Fatalf("MongoDB down: %d %s, want 500 %s", status, body, want)
	}
	if status, _, _ := a.do(t, http.MethodGet, "/readyz", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with MongoDB down: %d, want 503", status)
	}
	if status, _, _ := a.do(t, http.MethodGet, "/healthz", nil); status != http.StatusOK {
		t.Fatalf("healthz with MongoDB down: %d, want 200", status)
	}
	ms.Restart(t)
	if status, _, _ := a.do(t, http.MethodGet, "/readyz", nil); status != http.StatusOK {
		t.Fatalf("readyz after MongoDB is back: %d, want 200", status)
	}
}
