package sqlite

import "testing"

// SetSearchWindow makes searchWindow n until the test ends.
func SetSearchWindow(t *testing.T, n int) {
	old := searchWindow
	searchWindow = n
	t.Cleanup(func() { searchWindow = old })
}
