//go:build unix

package transport

import (
	"os"
	"path/filepath"
	"syscall"
)

// filesLockName is the file in a data dir whose flock serializes the
// load-or-create of the files in it. Not the directory itself: felix serve
// holds a lock on that for its whole life.
const filesLockName = "files.lock"

// lockDir takes an exclusive flock on dir/files.lock, waiting for another
// holder, and returns its release. Locks on separately opened descriptors
// exclude each other within one process too.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, filesLockName), os.O_RDWR|os.O_CREATE, 0o600)
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
