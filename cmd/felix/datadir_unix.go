//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dataDirLockFile is held (flock) by the broker that uses the data dir.
const dataDirLockFile = "felix.lock"

// lockDataDir takes an exclusive advisory lock on <dir>/felix.lock for the
// life of the broker, so that a second `felix serve` on the same data dir
// stops at start with a clear error instead of sharing its keys, its
// control-plane store and its logs (or failing later on one of them with
// a confusing message). The lock file holds the owner's pid. The kernel
// drops the lock when the process dies, so a crash leaves nothing to clean.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, dataDirLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					owner = fmt.Sprintf("another felix process (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("%s is in use by %s; give each broker its own data directory", dir, owner)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
