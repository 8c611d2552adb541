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

// dataDirLockFile holds the pid of the broker that uses the data dir, for
// the error a second one gets.
const dataDirLockFile = "felix.lock"

// lockDataDir takes an exclusive advisory lock (flock) on the data
// directory itself for the life of the broker, so that a second `felix
// serve` on the same data dir stops at start with a clear error instead of
// sharing its keys, its control-plane store and its logs (or failing later
// on one of them with a confusing message). The directory is locked rather
// than <dir>/felix.lock: a lock on a file someone deleted by hand (a
// "stale lock" clean-up) would let a second broker lock a new file of the
// same name. felix.lock holds the owner's pid. The kernel drops the lock
// when the process dies, so a crash leaves nothing to clean.
func lockDataDir(dir string) (release func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := "another process"
			if b, rerr := os.ReadFile(filepath.Join(dir, dataDirLockFile)); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					owner = fmt.Sprintf("another felix process (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("%s is in use by %s; give each broker its own data directory", dir, owner)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	// The pid is only for the message above: failing to write it does
	// not stop the broker.
	_ = os.WriteFile(filepath.Join(dir, dataDirLockFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return func() { d.Close() }, nil
}
