//go:build !unix

package transport

import "syscall"

// readBuffer cannot inspect socket buffers on this platform.
func readBuffer(syscall.RawConn, bool) int { return -1 }
