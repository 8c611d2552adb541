//go:build unix

package transport

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the directory dir, waiting for
// another holder, and returns its release. Locks on separately opened
// descriptors exclude each other within one process too.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}
