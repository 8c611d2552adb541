package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/controlplane"
)

// backupBroker is a broker run in-process for the backup tests: a durable
// stream t/ns/live (small segments, so a backup meets many), a durable
// stream t/ns/jobs for a queue group, a durable cache t/ns/kv, and the
// embedded control plane.
type backupBroker struct {
	dir, addr, ca string
	cp            cpInfo
	b             *broker.Broker
	c             *client.Client
	stop          func()
}

const (
	backupJobs     = 20 // records of t/ns/jobs
	backupAckFirst = 10 // of them acked before any backup
	backupKeys     = 20 // entries of t/ns/kv
)

func startBackupBroker(t *testing.T, dir string) *backupBroker {
	t.Helper()
	nextCP := watchControlPlanes(t)
	addr, b, ca, stop := startServeDir(t, dir, "--no-dev-defaults",
		"--durable-stream", "t/ns/live", "--durable-stream", "t/ns/jobs", "--durable-cache", "t/ns/kv",
		"--segment-bytes", "4096", "--controlplane-addr", "127.0.0.1:0", "--controlplane-sync-interval", "20ms")
	t.Cleanup(stop)
	bb := &backupBroker{dir: dir, addr: addr, ca: ca, cp: nextCP(), b: b, stop: stop}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{TenantID: "t", CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bb.c = c
	return bb
}

// populate declares t/ns/declared through the control plane and fills
// everything: 3 records in declared, backupJobs in jobs, backupKeys cache
// entries, and the group g with the first backupAckFirst jobs acked. It
// returns the consumer, holding later jobs in flight.
func (bb *backupBroker) populate(t *testing.T) *client.Consumer {
	t.Helper()
	for _, c := range []struct{ path, body string }{
		{"/v1/tenants", `{"tenant_id":"t"}`},
		{"/v1/tenants/t/namespaces", `{"namespace":"ns"}`},
		{"/v1/tenants/t/namespaces/ns/streams", `{"stream":"declared","durable":true}`},
	} {
		if code, body := call(t, "POST", bb.cp.base+c.path, bb.cp.admin, c.body); code != 201 {
			t.Fatalf("POST %s: %d %s", c.path, code, body)
		}
	}
	eventually(t, "the control plane's stream t/ns/declared", func() bool {
		_, err := bb.b.Stream("t", "ns", "declared")
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bb.c.PublishBatch(ctx, "ns", "declared", payloads("d-", 3)); err != nil {
		t.Fatal(err)
	}
	if err := bb.c.PublishBatch(ctx, "ns", "jobs", payloads("j-", backupJobs)); err != nil {
		t.Fatal(err)
	}
	kv := bb.c.Cache("ns", "kv")
	for i := range backupKeys {
		if _, err := kv.Put(ctx, fmt.Sprintf("k%d", i), fmt.Appendf(nil, "v-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	co, err := bb.c.Consumer(ctx, "ns", "jobs", "g", client.WithPrefetch(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { co.Close() })
	for i := range backupAckFirst {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != uint64(i) {
			t.Fatalf("delivery %d has offset %d", i, m.Offset)
		}
		if err := m.Ack(ctx); err != nil { // returns once the ack is in the group's state log
			t.Fatal(err)
		}
	}
	return co
}

func payloads(prefix string, n int) [][]byte {
	var ps [][]byte
	for i := range n {
		ps = append(ps, fmt.Appendf(nil, "%s%d", prefix, i))
	}
	return ps
}

// restoredWant is what a broker started on a backup must hold.
type restoredWant struct {
	liveMin, liveMax uint64          // records of t/ns/live: at least (acked before the backup), at most (acked at all)
	jobsMust         map[uint64]bool // offsets group g must deliver (not acked before the backup)
	jobsMay          map[uint64]bool // offsets it may deliver (acked while the backup ran)
}

// checkRestored starts a broker on dir and checks, through the SDK, what
// it serves against want.
func checkRestored(t *testing.T, dir string, want restoredWant) {
	t.Helper()
	bb := startBackupBroker(t, dir)
	defer bb.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The control plane's stream is there once the broker applied the
	// copied store.
	eventually(t, "the control plane's stream t/ns/declared", func() bool {
		_, err := bb.b.Stream("t", "ns", "declared")
		return err == nil
	})

	// t/ns/live: a gap-free, in-order prefix of what was published, holding
	// every record acked before the backup started.
	s, err := bb.b.Stream("t", "ns", "live")
	if err != nil {
		t.Fatal(err)
	}
	n := s.Tail()
	if n < want.liveMin || n > want.liveMax {
		t.Fatalf("t/ns/live has %d records, want between %d (acked before the backup) and %d (acked in all)", n, want.liveMin, want.liveMax)
	}
	readStream(ctx, t, bb.c, "live", "m-", n)
	readStream(ctx, t, bb.c, "declared", "d-", 3)

	kv := bb.c.Cache("ns", "kv")
	for i := range backupKeys {
		v, ok, err := kv.Get(ctx, fmt.Sprintf("k%d", i))
		if err != nil || !ok || string(v) != fmt.Sprintf("v-%d", i) {
			t.Fatalf("cache key k%d: %q %v %v", i, v, ok, err)
		}
	}

	// Group g resumes: the jobs acked before the backup are never
	// delivered again, every job not acked before it is.
	co, err := bb.c.Consumer(ctx, "ns", "jobs", "g", client.WithPrefetch(5))
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	missing := len(want.jobsMust)
	got := map[uint64]bool{}
	for {
		if missing == 0 {
			st, err := bb.c.QueueStats(ctx, "ns", "jobs", "g")
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending == 0 && st.InFlight == 0 && st.Lag == 0 {
				break // nothing more to deliver
			}
		}
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatalf("group g after the restore: %v (got %v, want %v)", err, got, want.jobsMust)
		}
		if !want.jobsMust[m.Offset] && !want.jobsMay[m.Offset] {
			t.Fatalf("group g delivered job %d (%s) again after the restore: it was acked before the backup", m.Offset, m.Payload)
		}
		if want.jobsMust[m.Offset] && !got[m.Offset] {
			missing--
		}
		got[m.Offset] = true
		if string(m.Payload) != fmt.Sprintf("j-%d", m.Offset) {
			t.Fatalf("job %d: payload %q", m.Offset, m.Payload)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// readStream reads the first n records of t/ns/<stream> and checks each is
// prefix<offset>: in order, no gap.
func readStream(ctx context.Context, t *testing.T, c *client.Client, stream, prefix string, n uint64) {
	t.Helper()
	sub, err := c.Subscribe(ctx, "ns", stream, client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := range n {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("%s: record %d of %d: %v", stream, i, n, err)
		}
		if !ev.HasOffset || ev.Offset != i || string(ev.Payload) != fmt.Sprintf("%s%d", prefix, i) {
			t.Fatalf("%s: record %d is offset %d (has %v) %q", stream, i, ev.Offset, ev.HasOffset, ev.Payload)
		}
	}
}

func set(from, to uint64) map[uint64]bool {
	m := map[uint64]bool{}
	for i := from; i < to; i++ {
		m[i] = true
	}
	return m
}

// A backup of a running broker, taken while a publisher appends to a
// durable stream (rolling small segments), a cache key is rewritten and a
// consumer acks, starts a broker that serves a gap-free prefix of the
// stream holding every record acked before the backup began, the cache
// entries written before it, the stream declared through the control
// plane, and the group where it was: no job acked before the backup is
// delivered again (acks return once in the group's state log, copied
// after they returned), every job not acked yet is (at least once), and
// jobs acked while the backup ran may be. A running broker whose control
// plane cannot be asked for its store fails the backup, leaving nothing.
func TestBackupRunningBroker(t *testing.T) {
	root := t.TempDir()
	src, dst := filepath.Join(root, "data"), filepath.Join(root, "backup")
	bb := startBackupBroker(t, src)
	co := bb.populate(t)
	cpAddr := strings.TrimPrefix(bb.cp.base, "http://")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acked atomic.Uint64
	var stopWriters atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the publisher: each record acked before the next
		defer wg.Done()
		for i := 0; !stopWriters.Load(); i++ {
			if err := bb.c.Publish(ctx, "ns", "live", fmt.Appendf(nil, "m-%d", i)); err != nil {
				t.Errorf("publish m-%d: %v", i, err)
				return
			}
			acked.Store(uint64(i + 1))
		}
	}()
	go func() { // one cache key rewritten: the cache's log grows meanwhile
		defer wg.Done()
		kv := bb.c.Cache("ns", "kv")
		val := bytes.Repeat([]byte("h"), 200)
		for !stopWriters.Load() {
			if _, err := kv.Put(ctx, "hot", val); err != nil {
				t.Errorf("put hot: %v", err)
				return
			}
		}
	}()
	eventually(t, "the publisher to fill several segments", func() bool { return acked.Load() >= 300 })

	// The store is held by the broker: its API is asked, and must answer.
	for _, bad := range [][]string{
		{"--controlplane-addr", "127.0.0.1:1"},
		{"--controlplane-addr", cpAddr, "--controlplane-token", "not-the-admin-token"},
	} {
		_, _, err := runCLISplit(ctx, append([]string{"backup", "--data-dir", src, dst}, bad...)...)
		if err == nil || !strings.Contains(err.Error(), "in use (a running broker or control plane has it open)") {
			t.Fatalf("backup %v: %v", bad, err)
		}
		assertNoBackup(t, dst)
	}

	// Jobs 10..14 are in flight (prefetch 5): ack them while the backup
	// runs, so whether the copy has their acks depends on the timing.
	ackDone := make(chan error, 1)
	go func() {
		for range 5 {
			m, err := co.Next(ctx)
			if err == nil {
				err = m.Ack(ctx)
			}
			if err != nil {
				ackDone <- err
				return
			}
		}
		ackDone <- nil
	}()
	ackedBefore := acked.Load()
	out, _, err := runCLISplit(ctx, "backup", "--data-dir", src, "--controlplane-addr", cpAddr, dst)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if err := <-ackDone; err != nil {
		t.Fatal(err)
	}
	stopWriters.Store(true)
	wg.Wait()
	ackedAfter := acked.Load()
	bb.stop()
	t.Logf("backup while %d..%d records were acked:\n%s", ackedBefore, ackedAfter, out)
	for _, want := range []string{"fetched from the control-plane API at " + bb.cp.base, "1 tenants, 1 namespaces, 1 streams", "admin-token", "dev-key.pem"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	checkFilesCopied(t, src, dst)
	checkRestored(t, dst, restoredWant{liveMin: ackedBefore, liveMax: ackedAfter,
		jobsMust: set(backupAckFirst+5, backupJobs), jobsMay: set(backupAckFirst, backupAckFirst+5)})
}

// A backup of a stopped broker holds exactly what the data dir holds: the
// same records in every log, the same store, the same small files with
// the same modes; and a broker starts on it with everything in place.
func TestBackupStoppedBrokerIdentical(t *testing.T) {
	root := t.TempDir()
	src, dst := filepath.Join(root, "data"), filepath.Join(root, "backup")
	bb := startBackupBroker(t, src)
	bb.populate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bb.c.PublishBatch(ctx, "ns", "live", payloads("m-", 500)); err != nil {
		t.Fatal(err)
	}
	bb.stop()

	out, _, err := runCLISplit(ctx, "backup", "--data-dir", src, dst)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.Contains(out, "read from its file (broker stopped)") {
		t.Errorf("summary:\n%s", out)
	}
	checkFilesCopied(t, src, dst)
	var logs int
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		ents, err := os.ReadDir(path)
		if err != nil || len(commitlog.SegmentBases(ents)) == 0 {
			return err
		}
		logs++
		rel, _ := filepath.Rel(src, path)
		if a, b := dumpLog(t, path), dumpLog(t, filepath.Join(dst, rel)); a != b || a == "" {
			t.Errorf("log %s: the copy's records differ (%d and %d bytes of dump)", rel, len(a), len(b))
		}
		return nil
	})
	if err != nil || logs != 5 { // live, jobs, declared, kv, group g
		t.Fatalf("%d logs in the data dir: %v", logs, err)
	}
	a, err := controlplane.CheckStoreFile(filepath.Join(src, controlplane.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := controlplane.CheckStoreFile(filepath.Join(dst, controlplane.FileName)); err != nil || a != b {
		t.Fatalf("store %+v, copy %+v: %v", a, b, err)
	}
	checkRestored(t, dst, restoredWant{liveMin: 500, liveMax: 500, jobsMust: set(backupAckFirst, backupJobs)})
}

// dumpLog returns every record of the log in dir as JSON lines.
func dumpLog(t *testing.T, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := commitlog.Dump(dir, 0, 0, &buf, commitlog.DumpJSON); err != nil {
		t.Fatalf("dump %s: %v", dir, err)
	}
	return buf.String()
}

// checkFilesCopied checks the top-level files of src are in dst with the
// same bytes and mode, but for the lock files, and that dst has the
// data dir's mode.
func checkFilesCopied(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || name == controlplane.FileName {
			continue
		}
		if name == "felix.lock" || name == "files.lock" {
			if _, err := os.Lstat(filepath.Join(dst, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s was copied (%v)", name, err)
			}
			continue
		}
		a, _ := os.ReadFile(filepath.Join(src, name))
		b, err := os.ReadFile(filepath.Join(dst, name))
		sa, _ := os.Stat(filepath.Join(src, name))
		sb, serr := os.Stat(filepath.Join(dst, name))
		if err != nil || serr != nil || !bytes.Equal(a, b) || sa.Mode() != sb.Mode() {
			t.Errorf("%s: not copied as it is (%v %v)", name, err, serr)
		}
	}
	if a, b := mustStat(t, src).Mode(), mustStat(t, dst).Mode(); a != b {
		t.Errorf("data dir mode %v, copy %v", a, b)
	}
	if m := mustStat(t, filepath.Join(dst, "admin-token")).Mode().Perm(); m != 0o600 {
		t.Errorf("admin-token copied with mode %v", m)
	}
}

func mustStat(t *testing.T, path string) fs.FileInfo {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertNoBackup checks that dst does not exist and that no DEST.tmp-*
// was left beside it.
func assertNoBackup(t *testing.T, dst string) {
	t.Helper()
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s exists after a failed backup (%v)", dst, err)
	}
	left, _ := filepath.Glob(dst + ".tmp-*")
	if len(left) > 0 {
		t.Fatalf("a failed backup left %v", left)
	}
}

// makeLog writes a log of n records ("r-<i>") in small segments.
func makeLog(t *testing.T, dir string, n int) {
	t.Helper()
	lg, err := commitlog.Open(dir, commitlog.Options{SegmentBytes: 1024, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := lg.Append(context.Background(), [][]byte{fmt.Appendf(nil, "r-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}
}

// A DEST that exists and is not empty (or is a file, or is inside the
// data dir) is refused, and left as it was; an empty one is used.
func TestBackupRefusesNonEmptyDest(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	makeLog(t, filepath.Join(src, "streams", "t", "ns", "s"), 10)
	full := filepath.Join(root, "full")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "keep"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for dest, want := range map[string]string{
		full:                         "exists and is not empty",
		file:                         "is not a directory",
		filepath.Join(src, "inside"): "inside the data directory",
	} {
		if _, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, dest); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("backup to %s: %v, want %q", dest, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(full, "keep")); err != nil || string(b) != "mine" {
		t.Fatalf("the refused DEST changed: %q %v", b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "*.tmp-*")); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	sum, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, empty)
	if err != nil || sum.logs["streams"].records != 10 || sum.store != nil {
		t.Fatalf("backup to an empty directory: %+v %v", sum, err)
	}
	if _, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: filepath.Join(root, "nope")}}, filepath.Join(root, "x")); err == nil {
		t.Fatal("backup of a missing data dir")
	}
	assertNoBackup(t, filepath.Join(root, "x"))
}

// A file that cannot be read midway (a segment made unreadable, or any
// failure from the hook) fails the backup and leaves neither DEST nor its
// temporary directory.
func TestBackupFailureLeavesNoDest(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "data")
	makeLog(t, filepath.Join(src, "streams", "t", "ns", "a"), 100)
	makeLog(t, filepath.Join(src, "streams", "t", "ns", "b"), 100)
	if err := os.WriteFile(filepath.Join(src, "admin-token"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(src, "streams", "t", "ns", "b", commitlog.SegmentFileName(0))

	injected := errors.New("injected read failure")
	backupHook = func(path string) error {
		if path == victim {
			return injected
		}
		return nil
	}
	dst := filepath.Join(root, "backup")
	_, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, dst)
	backupHook = nil
	if !errors.Is(err, injected) || !strings.Contains(err.Error(), "nothing written to "+dst) {
		t.Fatalf("backup with a failing read: %v", err)
	}
	assertNoBackup(t, dst)

	t.Run("unreadable segment", func(t *testing.T) {
		if err := os.Chmod(victim, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(victim, 0o644)
		if f, err := os.Open(victim); err == nil {
			f.Close()
			t.Skip("file permissions are not enforced (running as root)")
		}
		_, err := runBackup(context.Background(), backupFlags{cpAPIFlags{dataDir: src}}, dst)
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("backup with an unreadable segment: %v", err)
		}
		assertNoBackup(t, dst)
	})
}

// A segment deleted from the head while the log is copied (retention, a
// cache compaction) drops the older segments already copied: the copy is
// the contiguous run after it, and opens and verifies.
func TestBackupLogSegmentDeletedDuringCopy(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "log")
	makeLog(t, src, 300)
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	bases := commitlog.SegmentBases(ents)
	if len(bases) < 5 {
		t.Fatalf("only %d segments", len(bases))
	}
	// When the third segment is about to be read, "retention" deletes it
	// and the two before it.
	backupHook = func(path string) error {
		if path == filepath.Join(src, commitlog.SegmentFileName(bases[2])) {
			for _, b := range bases[:3] {
				os.Remove(filepath.Join(src, commitlog.SegmentFileName(b)))
				os.Remove(filepath.Join(src, commitlog.IndexFileName(b)))
			}
		}
		return nil
	}
	defer func() { backupHook = nil }()
	dst := filepath.Join(root, "copy")
	c, err := copyLog(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := commitlog.Verify(dst)
	if err != nil || rep.Oldest != bases[3] || rep.Next != 300 || c.records != int64(300-bases[3]) || c.segments != len(bases)-3 {
		t.Fatalf("copy: %+v, report oldest %d next %d: %v (bases %v)", c, rep.Oldest, rep.Next, err, bases)
	}
	if _, err := os.Stat(filepath.Join(dst, commitlog.SegmentFileName(bases[0]))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an older segment stayed in the copy: %v", err)
	}
}

// The active segment read in the middle of a write ends in part of a
// record: the copy is cut back to the last whole record and verifies;
// the live log is not touched.
func TestBackupCutsTornTail(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "log")
	makeLog(t, src, 50)
	ents, _ := os.ReadDir(src)
	bases := commitlog.SegmentBases(ents)
	active := filepath.Join(src, commitlog.SegmentFileName(bases[len(bases)-1]))
	f, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := []byte{0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 50} // a record header cut short
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := mustStat(t, active).Size()
	c, err := copyLog(context.Background(), src, filepath.Join(root, "copy"))
	if err != nil || c.records != 50 || c.torn != int64(len(half)) {
		t.Fatalf("copy: %+v: %v", c, err)
	}
	if after := mustStat(t, active).Size(); after != before {
		t.Fatalf("the live segment changed: %d → %d bytes", before, after)
	}
}

// When every segment listed is deleted before it is read (a compaction
// wrote the log's live data again and cut everything before it), the log
// is listed again and copied from its new head: it is not taken for a log
// that was deleted.
func TestBackupLogRelistedWhenAllListedSegmentsDeleted(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "log")
	makeLog(t, src, 100)
	ents, _ := os.ReadDir(src)
	bases := commitlog.SegmentBases(ents)
	last := filepath.Join(src, commitlog.SegmentFileName(bases[len(bases)-1]))
	var once sync.Once
	backupHook = func(path string) error {
		if path != last {
			return nil
		}
		once.Do(func() {
			lg, err := commitlog.Open(src, commitlog.Options{SegmentBytes: 1024, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Error(err)
				return
			}
			defer lg.Close()
			for i := 100; i < 200; i++ {
				if _, err := lg.Append(context.Background(), [][]byte{fmt.Appendf(nil, "r-%d", i)}); err != nil {
					t.Error(err)
					return
				}
			}
			if err := lg.TruncateBefore(150); err != nil {
				t.Error(err)
			}
		})
		return nil
	}
	defer func() { backupHook = nil }()
	dst := filepath.Join(root, "copy")
	c, err := copyLog(context.Background(), src, dst)
	if err != nil || c.gone {
		t.Fatalf("copy: %+v: %v", c, err)
	}
	live, err := commitlog.Verify(src)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := commitlog.Verify(dst)
	if err != nil || rep.Oldest != live.Oldest || rep.Next != 200 || live.Oldest <= bases[len(bases)-1] {
		t.Fatalf("copy [%d, %d), live [%d, %d) (listed first: %v): %v", rep.Oldest, rep.Next, live.Oldest, live.Next, bases, err)
	}
}
