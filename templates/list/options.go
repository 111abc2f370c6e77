package list

import "slices"

// statusOption is one choice of the status filter.
type statusOption struct{ value, label string }

var statusOptions = []statusOption{
	{"", "Any status"},
	{"success", "Success"},
	{"failed", "Failed"},
	{"retrying", "Retrying"},
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
