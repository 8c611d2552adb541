//go:build unix

package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// readBuffer returns the size the kernel granted for a socket buffer, or -1
// when it cannot be read. Linux reports twice the granted request (it counts
// bookkeeping overhead); that is halved so the result compares with what
// was asked for.
func readBuffer(raw syscall.RawConn, send bool) int {
	opt := unix.SO_RCVBUF
	if send {
		opt = unix.SO_SNDBUF
	}
	size, serr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) {
		size, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt)
	}); err != nil || serr != nil {
		return -1
	}
	if isLinux {
		size /= 2
	}
	return size
}
