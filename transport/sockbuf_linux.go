//go:build linux

package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const isLinux = true

// forceBuffer sets a buffer with SO_RCVBUFFORCE / SO_SNDBUFFORCE, which
// ignore net.core.[rw]mem_max but need CAP_NET_ADMIN.
func forceBuffer(raw syscall.RawConn, size int, send bool) error {
	opt := unix.SO_RCVBUFFORCE
	if send {
		opt = unix.SO_SNDBUFFORCE
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
	}); err != nil {
		return err
	}
	return serr
}
