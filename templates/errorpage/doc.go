// Package errorpage is the dashboard's page for errors: an unknown page,
// a bad request, a server fault.
package errorpage
