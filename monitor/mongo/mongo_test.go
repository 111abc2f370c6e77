package mongo

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks/internal/mongotest"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/storetest"
)

// TestConformance runs the suite every store passes, each check on a
// database of its own: on a fresh embedded FerretDB, or on the real
// MongoDB of SENDHOOKS_TEST_MONGODB_URI when set.
func TestConformance(t *testing.T) {
	opts := storetest.Options{SetSearchWindow: func(t *testing.T, n int) {
		old := searchWindow
		searchWindow = n
		t.Cleanup(func() { searchWindow = old })
	}}
	if os.Getenv(realMongoURI) == "" {
		opts.NotAtomic = "the embedded FerretDB v1 (set " + realMongoURI + " to run them on a MongoDB)"
	}
	storetest.Run(t, func(t *testing.T) monitor.Store {
		return openEmpty(t)
	}, opts)
}

// openEmpty opens a store on an empty database, not set up.
func openEmpty(t *testing.T) *Store {
	t.Helper()
	uri, db := os.Getenv(realMongoURI), fmt.Sprintf("sendhooks_test_%d", time.Now().UnixNano())
	if uri == "" {
		srv := mongotest.Start(t)
		uri, db = srv.URI(), srv.Database()
	}
	s, err := Open(uri, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if os.Getenv(realMongoURI) != "" {
			s.db.Drop(ctx)
		}
		s.Close(ctx)
	})
	return s
}
