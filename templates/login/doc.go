// Package login is the dashboard's sign-in form, shown when the monitor
// has dashboard credentials.
package login
