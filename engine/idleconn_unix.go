//go:build unix

package engine

import (
	"net"
	"syscall"
)

// idleConnUsable tells whether a kept connection can carry a request:
// the receiver has not closed it, nor sent anything on it while it sat
// idle (such as a 408 before closing), which would otherwise be read as
// the answer to the next request. It peeks at the socket without waiting.
func idleConnUsable(raw net.Conn) bool {
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		buf     [1]byte
		peekErr error
		n       int
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, peekErr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // one try, never wait
	})
	// Nothing to read is the one good answer: n == 0 is the receiver's
	// close, n > 0 something it sent unasked.
	return err == nil && n <= 0 && (peekErr == syscall.EAGAIN || peekErr == syscall.EWOULDBLOCK)
}
