// Package mongotest starts an embedded MongoDB-wire server for tests:
// FerretDB v1 with its SQLite backend on a temporary directory, in the test
// process, on a free loopback port. Tests can stop it and start it again on
// the same port and data, to see how code behaves while MongoDB is away.
package mongotest

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks/internal/ferret"
)

// Server is one embedded FerretDB. Its methods are for the test goroutine.
type Server struct {
	addr    string
	dataDir string
	db      string
	srv     *ferret.Server // nil while stopped
}

// Start starts a server with an empty data directory; it is stopped when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{addr: freeAddr(t), dataDir: t.TempDir(), db: "test"}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Database is the name of the database in URI.
func (s *Server) Database() string { return s.db }

// URI is a MongoDB connection string naming the server and the database.
func (s *Server) URI() string { return "mongodb://" + s.addr + "/" + s.db }

// Stop stops the server; its clients see their connections close.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	s.start(t)
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	// The port of a server just stopped may take a moment to free.
	deadline := time.Now().Add(10 * time.Second)
	for {
		srv, err := ferret.Start(context.Background(), s.addr, s.dataDir)
		if err == nil {
			s.srv = srv
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mongotest: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.srv != nil {
		s.srv.Stop()
		s.srv = nil
	}
}

// freeAddr finds a loopback port that nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mongotest: find a free port: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
