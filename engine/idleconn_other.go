//go:build !unix

package engine

import "net"

// idleConnUsable cannot look at the socket here; a closed kept connection
// is then found when the request is made, and replaced once.
func idleConnUsable(net.Conn) bool { return true }
