package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/felixmq/felix/broker"
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
	// Once the first one stopped, the data dir is free again.
	stop()
	_, _, _, stop2 := startServeDir(t, dir)
	stop2()
	if _, err := os.Stat(filepath.Join(dir, dataDirLockFile)); err != nil {
		t.Errorf("lock file: %v", err)
	}
}

// runServeUntilReady runs the CLI in-process and returns its error if it
// fails before listening, or nil (after stopping it) if it started.
func runServeUntilReady(t *testing.T, args ...string) error {
	t.Helper()
	started := make(chan struct{})
	serveReadyHook = func(string, *broker.Broker) { close(started) }
	defer func() { serveReadyHook = nil }()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			return errors.New("exited without an error before listening")
		}
		return err
	case <-started:
		cancel()
		<-done
		return nil
	}
}
