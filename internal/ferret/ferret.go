// Package ferret runs FerretDB v1, a MongoDB-wire server on SQLite files,
// embedded in this process: the dev stack keeps its data in it, and tests
// use it as their real MongoDB-wire server.
package ferret

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// newMu serialises ferretdb.New, which writes a package-level variable.
var newMu sync.Mutex

// Server is an embedded MongoDB-wire server: FerretDB v1 with its
// SQLite backend, in this process.
type Server struct {
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts FerretDB listening on addr ("127.0.0.1:0" for a free
// port) and keeping its files in dir, and waits until it accepts
// connections. Stop it with Stop.
func Start(ctx context.Context, addr, dir string) (*Server, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		// FerretDB does not report the port it was given, so pick one.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("find a free port for the MongoDB-wire server: %w", err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("start the MongoDB-wire server on %s: %w", addr, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{addr: addr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(runCtx) // returns when runCtx is cancelled
	}()
	if err := waitListening(ctx, addr); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Stop stops the server and waits until it has.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}

// waitListening waits until addr accepts connections, for up to 10 s.
func waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the MongoDB-wire server does not answer on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
