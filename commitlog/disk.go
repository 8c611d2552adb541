package commitlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DiskLog is the durable Log: a directory of segment files. See the package
// documentation for the format, and Options for its policies.
//
// Writers are serialized by mu: a batch is encoded into one buffer and
// written with one write call. Concurrent AppendNoWait calls share that
// write call (group write, see group.go). Readers never take mu: they
// find a segment under segMu (read), take a reference to its file, and
// read with pread, seeing only records whose write completed. Under
// SyncAlways a dedicated syncer goroutine fsyncs everything written so far
// and wakes every append it covers (group commit).
type DiskLog struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File // holds the directory lock; nil where locks are not supported

	mu     sync.Mutex // writers: appends, rolls, retention, Close
	closed bool       // under mu
	buf    []byte     // encode buffer, under mu

	group groupQueue // AppendNoWait's group write
	// dropMu serializes retention and truncation, which delete segment
	// files without holding mu.
	dropMu sync.Mutex
	// unsyncedDrop: a segment deletion may not be durable yet (no
	// directory fsync since); the next deletion fsyncs the directory
	// first (see dropHead). Open fsyncs the directory, so a deletion of
	// an earlier run is durable before this one deletes. Under dropMu.
	unsyncedDrop bool

	segMu   sync.RWMutex
	segs    []*segment // oldest first, the last is active; replaced, never changed in place
	rclosed bool       // under segMu

	next       atomic.Uint64 // the active segment's next, stored under segMu
	oldest     atomic.Uint64 // segs[0].base, stored under segMu
	isClosed   atomic.Bool
	appendNote notifier

	synced   atomic.Uint64             // every record below this offset is fsynced
	failed   atomic.Pointer[stickyErr] // a write or fsync error; the log refuses writes after it
	syncNote notifier
	kick     chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	// syncing is a token held by the fsync of records under way (a
	// channel of one, not a mutex, so that a synctest bubble sees a
	// goroutine waiting for it as blocked): see syncRecords.
	syncing chan struct{}

	syncerWakeups atomic.Uint64 // times runSyncer woke to fsync (tests: an idle log's stays 0)

	writeFail writeFailures // under mu

	spare       spareState  // the next segment file, prepared ahead (roll.go); under mu
	rollingSeg  *segment    // RollInBackground: the segment sealed in the background (rollBehind) or whose background seal failed; under mu
	sealedIndex sealedIndex // index file left by the roll of the write under way; under mu
	indexMu     sync.Mutex  // index writes of sealed segments take turns

	// unsyncedRemoval: a roll that failed removed its new segment file,
	// and no directory fsync has made the removal durable since; no
	// record is written until one has (see syncRemovalLocked). Under mu.
	unsyncedRemoval bool

	stats struct {
		appends, records, bytes, writes, fsyncs, deleted, writeErrors atomic.Uint64
		truncated                                                     int64 // by recovery, set in Open
	}
}

type stickyErr struct{ err error }

var _ Log = (*DiskLog)(nil)

// Stats are counters since Open.
type Stats struct {
	Appends         uint64 // Append, AppendNoWait and AppendAt calls that wrote records
	Records         uint64 // records written
	Bytes           uint64 // record bytes written (headers and payloads)
	Writes          uint64 // write calls that wrote records: ≤ Appends, as concurrent AppendNoWait calls share one
	Queued          int    // AppendNoWait calls waiting now to join a write (the next group write)
	Fsyncs          uint64 // fsync calls on segment files and the directory (not the two that make a spare segment in the background)
	Segments        int    // segment files in the log now
	SegmentsDeleted uint64 // segments removed by retention, TruncateBefore and Purge
	WriteErrors     uint64 // appends not written (WriteError: disk full, file too large, I/O error)
	Oldest          uint64
	Next            uint64
	Synced          uint64 // every record below this offset is fsynced
	// RecoveryTruncatedBytes is what Open cut off a torn tail.
	RecoveryTruncatedBytes int64
}

// Open opens (creating if needed) the log in dir and recovers it: see the
// package documentation for the rules. A log that is not valid is refused
// with a *CorruptionError naming the file and byte position.
func Open(dir string, opts Options) (*DiskLog, error) {
	l, err := open(dir, opts)
	return l, explainFDs(err)
}

func open(dir string, opts Options) (*DiskLog, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := mkdirSynced(dir); err != nil {
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &DiskLog{
		dir:     dir,
		opts:    opts,
		log:     opts.Logger.With("log", dir),
		lock:    lock,
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		syncing: make(chan struct{}, 1),
	}
	start := time.Now()
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.release()
		}
		l.unlock()
		return nil, err
	}
	active := l.segs[len(l.segs)-1]
	l.next.Store(active.next)
	l.oldest.Store(l.segs[0].base)
	// Whatever recovery found may sit only in the page cache (a process
	// crash keeps it there); one fsync makes it as durable as it claims.
	if err := active.f.Sync(); err != nil {
		l.Close()
		return nil, fmt.Errorf("commitlog: sync %s: %w", active.path, err)
	}
	l.stats.fsyncs.Add(1)
	// An active segment with no records may be the new segment of a roll
	// cut short by a crash before its directory fsync: its name may not
	// have reached the disk, and the records appended next, fsynced and
	// acknowledged, would go with it. A roll fsyncs the directory before
	// it writes a record into a new segment; so does Open. And a segment
	// deletion of the run before (cut short by a process crash before the
	// next deletion's fsync) may not be durable: it must be before this
	// run deletes the next segment (see dropHead). One fsync covers both;
	// with nothing to write back it costs little.
	if err := dirSync(dir); err != nil {
		l.Close()
		return nil, fmt.Errorf("commitlog: %w", err)
	}
	l.stats.fsyncs.Add(1)
	l.synced.Store(active.next)
	if opts.Sync != SyncNever {
		l.wg.Add(1)
		go l.runSyncer()
	}
	if (opts.RetentionBytes > 0 || opts.RetentionAge > 0) && opts.RetentionInterval > 0 {
		// A retention lowered since the log was last open applies now,
		// not at the first background pass an interval later.
		if err := l.EnforceRetention(); err != nil {
			l.log.Error("commitlog: retention at open", "err", err)
		}
		l.wg.Add(1)
		go l.runRetention()
	}
	l.log.Info("commitlog open", "segments", len(l.segs), "oldest", l.oldest.Load(), "next", l.next.Load(),
		"sync", opts.Sync.String(), "loss_window", opts.lossWindow(), "recovery", time.Since(start).Round(time.Microsecond))
	return l, nil
}

// Dir is the directory of the log.
func (l *DiskLog) Dir() string { return l.dir }

// Append writes the payloads as consecutive records; see Log.Append.
func (l *DiskLog) Append(ctx context.Context, payloads [][]byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	first, end, err := l.appendRecords(payloads, false)
	if err != nil || end == first {
		return first, err
	}
	return first, l.WaitDurable(ctx, end)
}

// AppendNoWait is Append without its wait for the fsync under SyncAlways:
// it writes the records, wakes readers and the syncer, and returns the
// first offset and the offset after the last record, which WaitDurable
// takes. A caller that appends under a lock of its own (so that its log
// order is the order its writes take effect) waits after releasing it,
// and its concurrent writers share the fsync (a durable cache's shards).
//
// Concurrent AppendNoWait calls also share write calls (group write):
// the calls that arrive while the log is writing are written together by
// the next write, each call's records consecutive. It returns once its
// records are written (readable, and safe from a process crash), or not
// written: a write that fails fails every call of its group, and stores
// none of their records. The payloads are not retained after it returns.
func (l *DiskLog) AppendNoWait(payloads [][]byte) (first, end uint64, err error) {
	return l.appendRecords(payloads, true)
}

// appendRecords checks the payloads, answers an empty batch with the next
// offset, and writes the records: in a write shared with concurrent
// callers when grouped (AppendNoWait), else with a write call of their own
// (Append: a stream's publishes are serialized before they reach the log,
// so they would find no one to share a write with).
func (l *DiskLog) appendRecords(payloads [][]byte, grouped bool) (first, end uint64, err error) {
	if err := l.checkPayloads(payloads); err != nil {
		return 0, 0, err
	}
	if len(payloads) == 0 {
		next := l.Next()
		return next, next, nil
	}
	if grouped {
		return l.appendGrouped(payloads)
	}
	l.lockForWrite(func() int64 { return payloadsSize(payloads) })
	ts := l.opts.Clock().UnixMicro()
	first, end, err = l.writeLocked(len(payloads), 1, func(int) int64 { return ts }, func(i int) []byte { return payloads[i] })
	l.unlockWrite()
	if err != nil {
		return 0, 0, err
	}
	l.notifyWrite()
	return first, end, nil
}

// checkPayloads checks the payloads' sizes, and that an empty batch is
// not appended to a closed log.
func (l *DiskLog) checkPayloads(payloads [][]byte) error {
	for _, p := range payloads {
		if err := l.checkSize(len(p)); err != nil {
			return err
		}
	}
	if len(payloads) == 0 && l.isClosed.Load() {
		return ErrClosed
	}
	return nil
}

// AppendAt writes records at their own offsets; see Log.AppendAt.
func (l *DiskLog) AppendAt(ctx context.Context, records []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, r := range records {
		if err := l.checkSize(len(r.Payload)); err != nil {
			return err
		}
	}
	if len(records) == 0 {
		if l.isClosed.Load() {
			return ErrClosed
		}
		return nil
	}
	l.lockForWrite(func() int64 {
		n := int64(0)
		for _, r := range records {
			n += int64(encodedSize(len(r.Payload)))
		}
		return n
	})
	// A closed or failed log says so, not that the offsets are wrong: a
	// follower must not take its own shutdown for a divergence.
	err := l.writableLocked()
	if err == nil {
		err = checkContiguous(l.next.Load(), records)
	}
	if err != nil {
		l.mu.Unlock()
		return err
	}
	_, end, err := l.writeLocked(len(records), 1, func(i int) int64 { return records[i].Timestamp }, func(i int) []byte { return records[i].Payload })
	l.unlockWrite()
	if err != nil {
		return err
	}
	return l.afterWrite(ctx, end)
}

func (l *DiskLog) checkSize(n int) error {
	if n > l.opts.MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, l.opts.MaxRecordBytes)
	}
	return nil
}

// writableLocked returns why the log takes no writes (closed, or failed),
// or nil; l.mu is held.
func (l *DiskLog) writableLocked() error {
	if l.closed {
		return ErrClosed
	}
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// lockForWrite takes l.mu for a write of about size() bytes. When that
// write will roll the active segment, whose seal fsyncs it under l.mu, it
// first fsyncs the segment without the lock (as the syncer does), so that
// the seal finds little left to flush: other appends, truncation and Close
// do not wait behind the fsync of up to a sync interval of records (10-25
// ms in the durable cache benchmark, under l.mu, stalled every writer).
// The rolling write itself still waits for it: a segment is complete on
// disk before the next one exists. If that fsync fails the log has
// failed, and the write says so.
func (l *DiskLog) lockForWrite(size func() int64) {
	l.mu.Lock()
	if l.closed {
		return
	}
	active := l.segs[len(l.segs)-1]
	if !l.rollsLocked(active, size()) || active.sealed == active.next || l.synced.Load() >= active.next {
		return
	}
	l.mu.Unlock()
	l.syncActive()
	l.mu.Lock()
}

// rollsLocked reports whether a write of size bytes rolls active first:
// it would take active past SegmentBytes, and active holds records, and
// (under RollInBackground) the write would take it past twice
// SegmentBytes, or the batch is larger than a segment.
func (l *DiskLog) rollsLocked(active *segment, size int64) bool {
	if active.size <= segmentHeaderSize || active.size+size <= l.opts.SegmentBytes {
		return false
	}
	return !l.opts.RollInBackground || size > l.opts.SegmentBytes || active.size+size > 2*l.opts.SegmentBytes
}

// writeLocked encodes n records of calls appends into one buffer and
// writes it with one call to the active segment (rolling first if the
// batch would take the segment past SegmentBytes), then publishes the
// records to readers. It returns the first offset and the offset after
// the last.
func (l *DiskLog) writeLocked(n, calls int, ts func(int) int64, payload func(int) []byte) (first, end uint64, err error) {
	if err := l.writableLocked(); err != nil {
		return 0, 0, err
	}
	size := int64(0)
	for i := range n {
		size += int64(encodedSize(len(payload(i))))
	}
	active := l.segs[len(l.segs)-1]
	if l.rollsLocked(active, size) {
		if active, err = l.rollLocked(active, calls); err != nil {
			return 0, 0, err
		}
	}
	if err := l.syncRemovalLocked(); err != nil {
		return 0, 0, l.writeFailedLocked(err, calls)
	}
	first = active.next
	b := l.buf[:0]
	var entries []indexEntry
	lastIndexed := int64(-1)
	if k := len(active.index.entries); k > 0 {
		lastIndexed = active.index.entries[k-1].Pos
	}
	for i := range n {
		pos := active.size + int64(len(b))
		if lastIndexed < 0 || pos-lastIndexed >= l.opts.IndexSpacingBytes {
			entries = append(entries, indexEntry{first + uint64(i), pos})
			lastIndexed = pos
		}
		b = appendRecord(b, first+uint64(i), ts(i), payload(i))
	}
	if cap(b) <= 4<<20 {
		l.buf = b
	}
	if _, err := writeAt(active.f, b, active.size); err != nil {
		// Leave no partial batch behind: later records would follow garbage.
		// The cut is fsynced too: records of the refused batch that
		// reached the disk must not come back after a crash.
		terr := active.f.Truncate(active.size)
		if terr == nil {
			terr = l.timedSync(active.f)
			l.stats.fsyncs.Add(1)
		}
		if terr != nil {
			l.fail(fmt.Errorf("%w (and cutting off the partial write: %v)", err, terr))
			return 0, 0, fmt.Errorf("commitlog: %w", err)
		}
		return 0, 0, l.writeFailedLocked(err, calls)
	}
	l.writtenLocked()
	end = first + uint64(n)
	l.segMu.Lock()
	active.index.entries = append(active.index.entries, entries...)
	active.size += int64(len(b))
	active.next = end
	active.lastTS = ts(n - 1)
	l.next.Store(end)
	l.segMu.Unlock()
	l.prepareSpareLocked(active)
	l.rollBehindLocked(active)
	l.stats.appends.Add(uint64(calls))
	l.stats.writes.Add(1)
	l.stats.records.Add(uint64(n))
	l.stats.bytes.Add(uint64(len(b)))
	if l.opts.OnWrite != nil {
		l.opts.OnWrite(n, len(b))
	}
	return first, end, nil
}

// afterWrite wakes readers and the syncer (SyncAlways, SyncInterval) and,
// under SyncAlways, waits until the records below end are fsynced.
func (l *DiskLog) afterWrite(ctx context.Context, end uint64) error {
	l.notifyWrite()
	return l.WaitDurable(ctx, end)
}

// notifyWrite wakes readers and, but under SyncNever, the syncer.
func (l *DiskLog) notifyWrite() {
	l.appendNote.broadcast()
	if l.opts.Sync != SyncNever {
		l.kickSyncer()
	}
}

// WaitDurable returns once the records below end are as durable as the
// log's policy promises before an append returns: under SyncAlways,
// fsynced (or the log failed: its error); under the other policies at
// once. See AppendNoWait.
func (l *DiskLog) WaitDurable(ctx context.Context, end uint64) error {
	if l.opts.Sync != SyncAlways {
		return nil
	}
	return waitUntil(ctx, &l.syncNote, func() (bool, error) {
		if f := l.failed.Load(); f != nil {
			return false, f.err
		}
		return l.synced.Load() >= end, nil
	})
}

// fail makes err sticky: every later write and sync wait returns it. After
// a failed fsync the state of the file is unknown, so the log stops
// accepting writes rather than acknowledging records it may have lost.
func (l *DiskLog) fail(err error) {
	if l.failed.CompareAndSwap(nil, &stickyErr{err}) {
		l.log.Error("commitlog: log failed; refusing writes until reopened", "err", err)
	}
	l.syncNote.broadcast()
}

// markSynced records that every record below off is fsynced.
func (l *DiskLog) markSynced(off uint64) {
	for {
		cur := l.synced.Load()
		if off <= cur || l.synced.CompareAndSwap(cur, off) {
			break
		}
	}
	l.syncNote.broadcast()
}

func (l *DiskLog) kickSyncer() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// runSyncer fsyncs on every kick: at once under SyncAlways, one
// SyncInterval later under SyncInterval (so the appends of an interval
// share the fsync). A kick that arrives during the wait or an fsync is
// kept (the channel holds one), so the next fsync covers every append
// written meanwhile: group commit. A log nothing is appended to sleeps: a
// broker with thousands of idle durable logs does no work for them.
func (l *DiskLog) runSyncer() {
	defer l.wg.Done()
	var wait *time.Timer
	if l.opts.Sync == SyncInterval {
		wait = time.NewTimer(l.opts.SyncInterval)
		wait.Stop()
		defer wait.Stop()
	}
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
		}
		if wait != nil {
			wait.Reset(l.opts.SyncInterval)
			select {
			case <-l.stop:
				return // Close fsyncs what was written
			case <-wait.C:
			}
		}
		l.syncerWakeups.Add(1)
		l.syncActive()
	}
}

// syncActive fsyncs the active segment if it holds unsynced records.
// Sealed segments were fsynced when they were sealed.
func (l *DiskLog) syncActive() error {
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	l.segMu.RLock()
	if l.rclosed {
		l.segMu.RUnlock()
		return ErrClosed
	}
	s := l.segs[len(l.segs)-1]
	target := s.next
	s.acquire()
	l.segMu.RUnlock()
	defer s.release()
	return l.syncRecords(s, target)
}

// syncRecords fsyncs s, whose records below upTo are written, unless
// they are fsynced already, then fails the log (the fsync failed) or
// marks them synced. The fsyncs of records take turns, each settling its
// outcome before the next starts: Linux reports a writeback error to one
// fsync of a file description only, so an fsync running alongside the
// one that got the error, or right after it, succeeds though records
// were lost. Taking turns, it finds the log failed and says so, instead
// of marking records synced that an append would then acknowledge.
func (l *DiskLog) syncRecords(s *segment, upTo uint64) error {
	l.syncing <- struct{}{}
	defer func() { <-l.syncing }()
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	if upTo <= l.synced.Load() {
		return nil
	}
	err := l.timedSync(s.f)
	l.stats.fsyncs.Add(1)
	if err != nil {
		err = fmt.Errorf("commitlog: sync %s: %w", s.path, err)
		l.fail(err)
		return err
	}
	l.markSynced(upTo)
	return nil
}

// Sync fsyncs every record appended so far, whatever the policy.
func (l *DiskLog) Sync() error {
	if l.isClosed.Load() {
		return ErrClosed
	}
	return l.syncActive()
}

// Next is the offset the next record gets.
func (l *DiskLog) Next() uint64 { return l.next.Load() }

// Oldest is the first retained offset (Next when the log is empty).
func (l *DiskLog) Oldest() uint64 { return l.oldest.Load() }

// Wait blocks until Next() > after; see Log.Wait.
func (l *DiskLog) Wait(ctx context.Context, after uint64) error {
	return waitUntil(ctx, &l.appendNote, func() (bool, error) {
		if l.isClosed.Load() {
			return false, ErrClosed
		}
		return l.next.Load() > after, nil
	})
}

// MaxReadBuffer bounds the buffers DiskLog.Read reads into: the payloads
// of one call share a few buffers of at most this size, so a payload keeps
// its whole buffer alive while it is referenced. A record that does not
// fit one (a payload of MaxReadBuffer-24 bytes or more) is read into a
// buffer of its own, exactly its size. A caller that keeps a few small
// payloads long (a queue's records in flight) copies them.
const MaxReadBuffer = 4 << 20

// Read returns records from offset from; see Log.Read. Payloads of one
// call share a few buffers (see MaxReadBuffer).
func (l *DiskLog) Read(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	maxRecords, maxBytes = readBounds(maxRecords, maxBytes)
	var out []Record
	size := 0
	for len(out) < maxRecords && (len(out) == 0 || size < maxBytes) {
		cur := from + uint64(len(out))
		v, err := l.view(cur)
		if err != nil {
			if len(out) > 0 && errors.Is(err, ErrTooOld) {
				break // retention passed us between segments; return what we have
			}
			return nil, err
		}
		if v.seg == nil {
			break // at the end of the log
		}
		n := len(out)
		out, size, err = l.readView(v, cur, out, size, maxRecords, maxBytes)
		v.seg.release()
		if err != nil {
			return nil, err
		}
		if cur+uint64(len(out)-n) < v.next {
			break // a bound stopped the read inside the segment
		}
	}
	return out, nil
}

// segView is a reader's snapshot of one segment.
type segView struct {
	seg     *segment
	end     int64  // bytes of whole records
	next    uint64 // offset after the segment's last record
	entries []indexEntry
}

// view finds the segment holding offset off and takes a reference to it;
// seg is nil when off is at or past the end of the log.
func (l *DiskLog) view(off uint64) (segView, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	if l.rclosed {
		return segView{}, ErrClosed
	}
	if oldest := l.segs[0].base; off < oldest {
		return segView{}, &TooOldError{Requested: off, Oldest: oldest}
	}
	if off >= l.next.Load() {
		return segView{}, nil
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > off }) - 1
	s := l.segs[i]
	s.acquire()
	return segView{seg: s, end: s.size, next: s.next, entries: s.index.entries}, nil
}

// readView appends to out the records of v from offset cur, within the
// bounds. It starts at the index entry at or before cur; if what it finds
// there does not check out it warns and scans from the segment's start
// instead, so a damaged index file costs time, never records.
func (l *DiskLog) readView(v segView, cur uint64, out []Record, size, maxRecords, maxBytes int) ([]Record, int, error) {
	n, sz := len(out), size
	e, ok := lookup(v.entries, cur)
	if !ok || e.Pos == segmentHeaderSize {
		return l.readFrom(v, segmentHeaderSize, v.seg.base, cur, out, size, maxRecords, maxBytes)
	}
	out, size, err := l.readFrom(v, e.Pos, e.Offset, cur, out, size, maxRecords, maxBytes)
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		return out, size, err
	}
	out, size, err2 := l.readFrom(v, segmentHeaderSize, v.seg.base, cur, out[:n], sz, maxRecords, maxBytes)
	if err2 == nil {
		l.log.Warn("commitlog: index entry does not match its segment; read by scanning from the start", "file", v.seg.path, "entry_offset", e.Offset, "entry_position", e.Pos, "err", err)
	}
	return out, size, err2
}

// readFrom reads records of v starting at byte pos, which holds offset off,
// skipping those below cur. It reads in chunks bounded by what the bounds
// could still take (the index tells where the record after the last one
// maxRecords allows starts), starting at 64 KiB and doubling; a record
// larger than a chunk is read whole by itself.
func (l *DiskLog) readFrom(v segView, pos int64, off, cur uint64, out []Record, size, maxRecords, maxBytes int) ([]Record, int, error) {
	limit := uint32(MaxRecordLimit)
	need := int64(0) // exact size of a record that did not fit the last chunk
	chunk := int64(64 << 10)
	stop := v.end // no record maxRecords allows starts at or after stop
	// Bounds may be as large as an int goes: sums of them saturate.
	after := cur + min(uint64(maxRecords-len(out)), math.MaxUint64-cur)
	if i := sort.Search(len(v.entries), func(i int) bool { return v.entries[i].Offset >= after }); i < len(v.entries) {
		stop = v.entries[i].Pos
	}
	for pos < v.end && off < v.next {
		// Each term is capped at chunk (at most MaxReadBuffer), so the sum cannot
		// overflow, and a term at the cap makes want chunk as before.
		want := min(chunk, min(l.opts.IndexSpacingBytes, chunk)+min(int64(max(maxBytes-size, 0)), chunk)+recordHeaderSize*int64(min(maxRecords-len(out), 4096)))
		if stop-pos >= recordHeaderSize { // else the index is wrong or passed: ignore it
			want = min(want, stop-pos)
		}
		buf := make([]byte, min(v.end-pos, max(want, need)))
		chunk = min(2*chunk, MaxReadBuffer)
		if _, err := v.seg.f.ReadAt(buf, pos); err != nil {
			return out, size, fmt.Errorf("commitlog: read %s at byte %d: %w", v.seg.path, pos, noEOF(err))
		}
		i := 0
		for i < len(buf) && off < v.next {
			r, n, err := decodeRecord(buf[i:], limit)
			if err == errIncomplete {
				break
			}
			if err == nil && r.Offset != off {
				err = fmt.Errorf("record offset %d, expected %d", r.Offset, off)
			}
			if err != nil {
				return out, size, &CorruptionError{File: v.seg.path, Position: pos + int64(i), Reason: err.Error()}
			}
			i += n
			off++
			if r.Offset < cur {
				continue
			}
			if len(out) > 0 && size+len(r.Payload) > maxBytes {
				return out, size, nil
			}
			out = append(out, r)
			size += len(r.Payload)
			if len(out) == maxRecords {
				return out, size, nil
			}
		}
		if i == 0 {
			// The record at pos is larger than the chunk: size the next
			// read from its header, checked against what the segment holds.
			if len(buf) < recordHeaderSize {
				return out, size, &CorruptionError{File: v.seg.path, Position: pos, Reason: errIncomplete.Error()}
			}
			h := parseRecordHeader(buf)
			need = recordHeaderSize + int64(h.Length)
			if h.Length > limit || need > v.end-pos {
				return out, size, &CorruptionError{File: v.seg.path, Position: pos, Reason: errIncomplete.Error()}
			}
			continue
		}
		pos += int64(i)
		need = 0
	}
	return out, size, nil
}

// Close stops the background work, waits for a retention pass or
// TruncateBefore under way (and for the making of a spare segment and the
// writing of an index file), fsyncs what was written (under every
// policy), removes the spare segment, and closes the files once in-flight
// reads finish. Appends waiting for an fsync are released by the final
// one. Waiters get ErrClosed.
func (l *DiskLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.isClosed.Store(true)
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	// A retention pass or truncation under way (it holds dropMu, and
	// deletes files without l.mu) ends before Close returns: a closed log
	// touches no file, so its directory can be reused at once (a stream
	// deleted and declared again) without the old pass deleting the new
	// log's segments by name. Later ones see closed and do nothing.
	l.dropMu.Lock()
	l.dropMu.Unlock() //nolint:staticcheck // an empty critical section: waits for the holder
	err := l.syncActive()
	l.segMu.Lock()
	segs := l.segs
	l.segs, l.rclosed = nil, true
	l.segMu.Unlock()
	for _, s := range segs {
		s.release()
	}
	l.removeSpare()
	l.unlock()
	l.appendNote.broadcast()
	l.syncNote.broadcast()
	return err
}

func (l *DiskLog) unlock() {
	if l.lock != nil {
		l.lock.Close() // closing the descriptor drops the lock
	}
}

// Stats returns the log's counters.
func (l *DiskLog) Stats() Stats {
	l.segMu.RLock()
	segments := len(l.segs)
	l.segMu.RUnlock()
	return Stats{
		Appends:                l.stats.appends.Load(),
		Records:                l.stats.records.Load(),
		Bytes:                  l.stats.bytes.Load(),
		Writes:                 l.stats.writes.Load(),
		Queued:                 l.queued(),
		Fsyncs:                 l.stats.fsyncs.Load(),
		Segments:               segments,
		SegmentsDeleted:        l.stats.deleted.Load(),
		WriteErrors:            l.stats.writeErrors.Load(),
		Oldest:                 l.Oldest(),
		Next:                   l.Next(),
		Synced:                 l.synced.Load(),
		RecoveryTruncatedBytes: l.stats.truncated,
	}
}

// SyncPolicy is the policy this log was opened with.
func (l *DiskLog) SyncPolicy() SyncPolicy { return l.opts.Sync }
