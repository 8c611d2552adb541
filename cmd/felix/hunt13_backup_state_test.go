package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
)

// hunt13State is what the broker on a data dir of the hunt13 backup test
// must serve: t/ns/live purged at liveFrom, holding liveFrom..liveTail;
// the cache t/ns/kv flushed, holding only "after" at afterVer; group
// "late" of t/ns/jobs, started at latest, next delivering lateNext.
type hunt13State struct {
	liveFrom, liveTail uint64
	afterVer           uint64
	lateNext           uint64
}

// checkHunt13State starts a broker on dir and checks what it serves
// against want; it leaves the broker as it found it but for the
// compare-and-set it makes on "after" (reported back).
func checkHunt13State(t *testing.T, dir string, want hunt13State) {
	t.Helper()
	bb := startBackupBroker(t, dir)
	defer bb.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s, err := bb.b.Stream("t", "ns", "live")
	if err != nil {
		t.Fatal(err)
	}
	if s.Tail() != want.liveTail {
		t.Fatalf("%s: t/ns/live tail %d, want %d", dir, s.Tail(), want.liveTail)
	}
	sub, err := bb.c.Subscribe(ctx, "ns", "live", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	for i := want.liveFrom; i < want.liveTail; i++ {
		ev, err := sub.Next(ctx)
		if err != nil || ev.Offset != i || string(ev.Payload) != fmt.Sprintf("m-%d", i) {
			t.Fatalf("%s: t/ns/live event %d: offset %d %q %v (purged before %d)", dir, i, ev.Offset, ev.Payload, err, want.liveFrom)
		}
	}
	sub.Close()

	kv := bb.c.Cache("ns", "kv")
	for i := range backupKeys {
		if v, ok, err := kv.Get(ctx, fmt.Sprintf("k%d", i)); err != nil || ok {
			t.Fatalf("%s: flushed key k%d = %q,%v,%v: came back", dir, i, v, ok, err)
		}
	}
	it, err := kv.GetItem(ctx, "after")
	if err != nil || !it.Found || string(it.Value) != "a" || it.Version != want.afterVer {
		t.Fatalf("%s: key after = %+v, %v; want a@%d", dir, it, err, want.afterVer)
	}
	if _, err := kv.Put(ctx, "after", []byte("b"), client.IfVersion(want.afterVer-1)); !errors.Is(err, client.ErrConditionFailed) {
		t.Fatalf("%s: compare-and-set with an older version: %v", dir, err)
	}
	v, err := kv.Put(ctx, "probe", []byte("p"))
	if err != nil || v <= want.afterVer {
		t.Fatalf("%s: a new write took version %d (%v), not above %d", dir, v, err, want.afterVer)
	}

	co, err := bb.c.Consumer(ctx, "ns", "jobs", "late", client.WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	m, err := co.Next(ctx)
	if err != nil || m.Offset != want.lateNext {
		t.Fatalf("%s: group late delivered offset %d (%v), want %d", dir, m.Offset, err, want.lateNext)
	}

	s, err = bb.b.Stream("t", "ns", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	tail := s.Tail()
	if err := bb.c.Publish(ctx, "ns", "jobs", []byte("after-restore")); err != nil {
		t.Fatal(err)
	}
	idle, err := bb.c.Consumer(ctx, "ns", "jobs", "idle", client.WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	m, err = idle.Next(ctx)
	if err != nil || m.Offset != tail {
		t.Fatalf("%s: group idle (joined at latest, nothing acked) delivered offset %d %q (%v), want %d", dir, m.Offset, m.Payload, err, tail)
	}
}

// A stopped broker's data dir holding a purged durable stream, a flushed
// durable cache written again after the flush and a consumer group
// started at latest is backed up; felix log verify accepts every log of
// the copy, and a broker started on the copy serves what one started on
// the original does: the stream from its purge point on, none of the
// flushed entries, the entry written after the flush with its version
// (versions go on above it), and the groups where they were, never the
// records published before they started (also a group that acked
// nothing).
func TestHunt13BackupPurgedFlushedLateGroup(t *testing.T) {
	root := t.TempDir()
	src, dst := filepath.Join(root, "data"), filepath.Join(root, "backup")
	bb := startBackupBroker(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bb.c.PublishBatch(ctx, "ns", "live", payloads("m-", 30)); err != nil {
		t.Fatal(err)
	}
	if r, err := bb.c.PurgeStream(ctx, "ns", "live"); err != nil || r.Offset != 30 {
		t.Fatalf("purge: %+v %v", r, err)
	}
	for i := 30; i < 35; i++ {
		if err := bb.c.Publish(ctx, "ns", "live", fmt.Appendf(nil, "m-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	kv := bb.c.Cache("ns", "kv")
	for i := range backupKeys {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := kv.Flush(ctx); err != nil || n != backupKeys {
		t.Fatalf("flush: %d %v", n, err)
	}
	afterVer, err := kv.Put(ctx, "after", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}

	if err := bb.c.PublishBatch(ctx, "ns", "jobs", payloads("j-", 8)); err != nil {
		t.Fatal(err)
	}
	co, err := bb.c.Consumer(ctx, "ns", "jobs", "late", client.NewGroupFromLatest(), client.WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := bb.c.PublishBatch(ctx, "ns", "jobs", payloads("j-", 4)); err != nil {
		t.Fatal(err)
	}
	for want := uint64(8); want < 10; want++ {
		m, err := co.Next(ctx)
		if err != nil || m.Offset != want {
			t.Fatalf("late: offset %d (%v), want %d", m.Offset, err, want)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	co.Close()
	// A group that joined at latest and acked nothing: its start alone
	// must survive.
	idle, err := bb.c.Consumer(ctx, "ns", "jobs", "idle", client.NewGroupFromLatest(), client.WithPrefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	idle.Close()
	bb.stop()

	if out, _, err := runCLISplit(ctx, "backup", "--data-dir", src, dst); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	var logs int
	err = filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		ents, err := os.ReadDir(path)
		if err != nil || len(commitlog.SegmentBases(ents)) == 0 {
			return err
		}
		logs++
		out, _, err := runCLISplit(ctx, "log", "verify", path)
		if err != nil || !strings.Contains(out, "ok") {
			t.Errorf("felix log verify %s: %v\n%s", path, err, out)
		}
		return nil
	})
	if err != nil || logs < 4 { // live, jobs, kv, group late
		t.Fatalf("%d logs in the copy: %v", logs, err)
	}
	want := hunt13State{liveFrom: 30, liveTail: 35, afterVer: afterVer, lateNext: 10}
	checkHunt13State(t, dst, want)
	checkHunt13State(t, src, want)
}
