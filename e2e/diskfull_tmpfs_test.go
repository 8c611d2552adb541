//go:build linux

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it, unmounted when the test ends; it skips the test where mounting is
// not permitted (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes the file dir/name until the file system has no room
// left.
func fillDisk(t *testing.T, dir, name string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for range 1 << 20 {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
	t.Fatal("the disk did not fill")
}

// On a disk full to the last block (a real tmpfs, ENOSPC), what an
// operator does to get room back works: a durable cache flush and a
// stream purge (the disk filled again in between), each of which must
// create a new segment file and so deletes the old segments first. The broker starts on the full disk,
// refuses publishes with ENOSPC, then after the purge takes them again
// at the next offset; after a restart the log holds exactly what was
// published after the purge, and the cache is empty.
func TestDiskFullTmpfsPurgeAndFlushMakeRoom(t *testing.T) {
	bin, _, addr := processTest(t)
	dataDir := filepath.Join(mountTmpfs(t, 12<<20), "data")
	maddr := freeTCP(t)
	args := []string{"--durable-stream", "default/default/full:always", "--durable-cache", "default/default/fc",
		"--disk-free-limit", "0", "--segment-bytes", "1048576", "--metrics-addr", maddr}
	p := startFelix(t, bin, addr, dataDir, args...)
	running := true
	t.Cleanup(func() {
		if running {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := dialProc(t, addr, dataDir)
	const (
		events  = 100 // 3 MiB: three sealed segments and an active one
		entries = 60  // 1.8 MiB in the cache's log
		size    = 30000
	)
	for i := range uint64(events) {
		if err := c.Publish(ctx, "default", "full", seq(i, size), client.WithAck(wire.AckPerMessage)); err != nil {
			t.Fatal(err)
		}
	}
	kv := c.Cache("default", "fc")
	for i := range entries {
		if _, err := kv.Put(ctx, "k"+strconv.Itoa(i), seq(uint64(i), size)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	p.cmd.Process.Signal(syscall.SIGTERM) // a clean stop removes the spare segments
	if err := <-p.done; err != nil {
		t.Fatalf("broker stopped with %v\n%s", err, p.logs.String())
	}
	running = false

	fillDisk(t, filepath.Dir(dataDir), "filler")
	p = startFelix(t, bin, addr, dataDir, args...)
	running = true
	c = dialProc(t, addr, dataDir)
	defer func() { c.Close() }()
	kv = c.Cache("default", "fc")
	if err := c.Publish(ctx, "default", "full", seq(events, size), client.WithAck(wire.AckPerMessage)); err == nil {
		t.Fatal("a 30 KB publish was stored on a full disk")
	} else {
		checkStorageError(t, err, dataDir, "default/default/full", "no space left on device")
	}

	n, err := kv.Flush(ctx)
	if err != nil || n != entries {
		t.Fatalf("cache flush on a full disk = %d, %v; want %d", n, err, entries)
	}
	fillDisk(t, filepath.Dir(dataDir), "filler2") // what the flush freed
	res, err := c.PurgeStream(ctx, "default", "full")
	if err != nil || res.Purged != events || res.Offset != events {
		t.Fatalf("purge on a full disk = %+v, %v; want %d purged, next offset %d", res, err, events, events)
	}
	var after []uint64
	for i := range uint64(5) {
		if err := c.Publish(ctx, "default", "full", seq(events+i, size), client.WithAck(wire.AckPerMessage)); err != nil {
			t.Fatalf("publish after the purge: %v", err)
		}
		after = append(after, events+i)
	}
	if _, err := kv.Put(ctx, "new", []byte("v")); err != nil {
		t.Fatalf("cache put after the flush: %v", err)
	}
	waitMetric(t, maddr, `felix_stream_purged_events_total{namespace="default",stream="full",tenant="default"}`, events)
	c.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("broker stopped with %v\n%s", err, p.logs.String())
	}
	running = false
	if got := strings.Count(p.logs.String(), "deleting the sealed segments first to make room"); got != 2 {
		t.Errorf("the broker logged %d purges making room, want 2 (cache and stream):\n%s", got, p.logs.String())
	}

	var stored []uint64
	forEachRecord(t, filepath.Join(dataDir, "streams", "default", "default", "full"), func(r commitlog.Record) {
		stored = append(stored, binary.BigEndian.Uint64(r.Payload))
	})
	if !slices.Equal(stored, after) {
		t.Fatalf("log holds %v after the purge, want %v", stored, after)
	}
	p = startFelix(t, bin, addr, dataDir, args...)
	running = true
	c = dialProc(t, addr, dataDir)
	kv = c.Cache("default", "fc")
	if _, found, err := kv.Get(ctx, "k1"); found || err != nil {
		t.Fatalf("flushed key after a restart: found %v, %v", found, err)
	}
	if v, found, err := kv.Get(ctx, "new"); err != nil || !found || string(v) != "v" {
		t.Fatalf("key put after the flush, after a restart: %q, %v, %v", v, found, err)
	}
}
