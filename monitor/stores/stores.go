// Package stores opens the store the monitor's configuration names:
// SQLite when SQLITE_PATH is set, MongoDB otherwise. It is the one place
// that knows every adapter, so that the monitor's binaries share the
// choice.
package stores

import (
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/mongo"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
)

// Open opens the store cfg names. MongoDB is connected to lazily; an
// SQLite file is opened (and created) at once.
func Open(cfg monitor.Config) (monitor.Store, error) {
	if cfg.SQLitePath != "" {
		s, err := sqlite.Open(cfg.SQLitePath)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := mongo.Open(cfg.MongoURI, cfg.MongoDatabase)
	if err != nil {
		return nil, err
	}
	return s, nil
}
