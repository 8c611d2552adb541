//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

const isLinux = false

func forceBuffer(syscall.RawConn, int, bool) error {
	return errors.New("forced socket buffers are Linux only")
}
