package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
	"github.com/sendhooks/sendhooks/monitor/storetest"
)

// openStore opens a store on a fresh SQLite file.
func openStore(t *testing.T) monitor.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "monitor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, openStore, storetest.Options{SetSearchWindow: sqlite.SetSearchWindow})
}
