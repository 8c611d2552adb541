//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A second broker on a data dir in use stops at start with an error that
// says so, whatever it declares. Before, it started and shared the first
// one's keys when it had no durable stream and no control plane, or failed
// with "open control plane store ...: timeout" or "open in another log"
// (about a stream the user may not have declared: the dev default).
func TestSecondBrokerOnDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	_, _, _, stop := startServeDir(t, dir)
	defer stop()
	for _, extra := range [][]string{
		{"--no-dev-defaults"},
		nil,
	} {
		args := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-addr", "off",
			"--controlplane-addr", "off"}, extra...)
		err := runServeUntilReady(t, args...)
		if err == nil {
			t.Fatalf("%v: a second broker started on a data dir in use", extra)
		}
		want := "--data-dir: " + dir + " is in use by another felix process (pid " + strconv.Itoa(os.Getpid()) + ")"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %q, want %q", extra, err, want)
		}
	}
	// Deleting the pid file by hand (a "stale lock" clean-up) does not
	// free the data dir: the lock is on the directory.
	if err := os.Remove(filepath.Join(dir, dataDirLockFile)); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-addr", "off", "--controlplane-addr", "off"}
	if err := runServeUntilReady(t, args...); err == nil || !strings.Contains(err.Error(), dir+" is in use by another process") {
		t.Fatalf("after felix.lock was deleted: err %v, want the data dir in use", err)
	}
	// Once the first one stopped, the data dir is free again.
	stop()
	_, _, _, stop2 := startServeDir(t, dir)
	stop2()
	if _, err := os.Stat(filepath.Join(dir, dataDirLockFile)); err != nil {
		t.Errorf("lock file: %v", err)
	}
}
