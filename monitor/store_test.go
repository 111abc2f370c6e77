package monitor

import (
	"context"
	"strings"
	"testing"

	"github.com/sendhooks/sendhooks"
)

func TestEnsureIndexesTwice(t *testing.T) {
	e := newTestEnv(t)
	for range 2 {
		if err := e.store.EnsureIndexes(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFitForStorage(t *testing.T) {
	ev := fitForStorage(sendhooks.StatusEvent{
		Job:           strings.Repeat("j", maxStoredJob+1),
		MetaData:      []byte(`"` + strings.Repeat("m", maxStoredMetaData) + `"`),
		Response:      strings.Repeat("r", maxStoredText-1) + "é",
		DeliveryError: "short",
	})
	if ev.Job != "" || ev.MetaData != nil || ev.Response != strings.Repeat("r", maxStoredText-1) || ev.DeliveryError != "short" {
		t.Fatalf("job %d bytes, metaData %d, response %d (%q…), error %q", len(ev.Job), len(ev.MetaData), len(ev.Response), ev.Response[len(ev.Response)-2:], ev.DeliveryError)
	}
}
