package sqlite

import (
	"fmt"
	"testing"
)

// SetSearchWindow makes searchWindow n until the test ends.
func SetSearchWindow(t *testing.T, n int) {
	old := searchWindow
	searchWindow = n
	t.Cleanup(func() { searchWindow = old })
}

// SetMoveBatch makes the batches that move per-URL counters n counters
// long until the test ends.
func SetMoveBatch(t *testing.T, n int) {
	old := moveBatch
	moveBatch = n
	t.Cleanup(func() { moveBatch = old })
}

// StopMovingAfter makes the move of per-URL counters fail after that many
// batches, as a monitor killed there would stop, until the test ends or
// it is called with 0.
func StopMovingAfter(t *testing.T, batches int) {
	afterMoveBatch = func(n int) error {
		if batches > 0 && n >= batches {
			return fmt.Errorf("stopped after %d batches", n)
		}
		return nil
	}
	t.Cleanup(func() { afterMoveBatch = nil })
}
