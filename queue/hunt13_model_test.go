package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// h13World drives a durable group over a small-segment disk stream with
// random operations (publish, Next, Ack, Nack, timeouts, members leaving,
// purge, retention, dead letters that fail, clean restarts, crashes, the
// stream put back to an older copy of itself (a lost unsynced tail),
// group and stream deleted and made again) and checks it against a model
// of what the group promised: a record acked or dead-lettered is never
// delivered again, a record the stream no longer holds is never handed
// out, attempt counts are exact across clean restarts, nothing unacked is
// lost (after every restart Lag is exactly the records not done), and
// once drained every record the stream holds is done and every one it
// dropped counted lost (exactly once without a crash).
type h13World struct {
	opTrace         // t and the trace of operations
	rollBehind bool // the state log seals its segments in the background (odd seeds)
	rng        *rand.Rand
	dir        string
	clock      *fakeClock
	opts       Options

	stream, state *commitlog.DiskLog
	g             *Group
	members       map[string]*Member
	prefetch      map[string]int
	memberSeq     int
	failDL        bool

	// the model of the current group (since it was made)
	start     uint64
	done      map[uint64]string // "ack" or "dead"
	inflight  map[uint64]h13Flight
	attempt   map[uint64]int  // the last delivery's attempt, as the group counts it
	uncertain map[uint64]bool // after a crash: the count may have been forgotten
	lostSeen  uint64          // Lost of the group's earlier lives
	crashed   bool
	// backup: the stream's segment files copied when it ended at
	// backupNext, while no purge or retention has run since (so the copy
	// is a prefix of the stream as it is).
	backup     map[string][]byte
	backupNext uint64
}

type h13Flight struct {
	member   string
	deadline time.Time
}

func newH13World(t *testing.T, seed uint64) *h13World {
	w := &h13World{opTrace: opTrace{t: t}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b9)), dir: t.TempDir(), clock: newFakeClock(), rollBehind: seed%2 == 1}
	w.opts = Options{Clock: w.clock, AckTimeout: 10 * time.Second, BackoffMin: time.Second, BackoffMax: 4 * time.Second,
		MaxAttempts: []int{-1, 1, 2, 3, 4}[w.rng.IntN(5)], ReadBatch: 1 + w.rng.IntN(6), SnapshotEvery: []int{1, 2, 3, 5, 1024}[w.rng.IntN(5)], DeadLetter: w.deadLetter}
	w.openLogs()
	t.Cleanup(w.closeLogs)
	w.newEpoch(nil)
	return w
}

func (w *h13World) openLogs() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	w.stream, err = commitlog.Open(filepath.Join(w.dir, "stream"), commitlog.Options{SegmentBytes: 256, Logger: quiet, RetentionInterval: -1})
	if err != nil {
		w.fatalf("open stream: %v", err)
	}
	w.state, err = commitlog.Open(filepath.Join(w.dir, "state"), commitlog.Options{Sync: commitlog.SyncAlways, SegmentBytes: 256,
		Logger: quiet, RetentionInterval: -1, RollInBackground: w.rollBehind})
	if err != nil {
		w.fatalf("open state: %v", err)
	}
}

func (w *h13World) closeLogs() {
	w.stream.Close()
	w.state.Close()
}

func (w *h13World) deadLetter(_ context.Context, rec commitlog.Record, attempts int, _ string) error {
	if w.failDL {
		return errors.New("dead-letter stream unavailable")
	}
	o := rec.Offset
	switch {
	case w.done[o] != "":
		w.fatalf("dead letter of %d, already %s", o, w.done[o])
	case o < w.stream.Oldest():
		w.fatalf("dead letter of %d, which the stream no longer holds (oldest %d)", o, w.stream.Oldest())
	case attempts != w.opts.MaxAttempts:
		w.fatalf("dead letter of %d after %d attempts", o, attempts)
	case string(rec.Payload) != fmt.Sprintf("rec-%d", o):
		w.fatalf("dead letter of %d with payload %q", o, rec.Payload)
	}
	w.note("dead-lettered %d", o)
	w.done[o] = "dead"
	return nil
}

// newEpoch starts a new group (its state log empty) at startAt.
func (w *h13World) newEpoch(startAt *uint64) {
	w.done, w.attempt, w.uncertain = map[uint64]string{}, map[uint64]int{}, map[uint64]bool{}
	w.lostSeen, w.crashed = 0, false
	w.start = w.stream.Oldest()
	if startAt != nil {
		w.start = min(max(*startAt, w.stream.Oldest()), w.stream.Next())
	}
	w.openGroup(startAt)
}

// openGroup opens the group from its state log, as the server does: the
// state is first made to agree with the stream (ClampState). startAt
// must be ignored by a group that has state.
func (w *h13World) openGroup(startAt *uint64) {
	if _, err := ClampState(w.state, w.stream.Next()); err != nil {
		w.fatalf("ClampState: %v", err)
	}
	o := w.opts
	o.StateLog, o.StartAt = w.state, startAt
	g, err := NewGroup("g", w.stream, o)
	if err != nil {
		w.fatalf("NewGroup: %v", err)
	}
	w.g = g
	w.members, w.prefetch, w.inflight = map[string]*Member{}, map[string]int{}, map[uint64]h13Flight{}
	s := g.Stats()
	if want := w.notDone(); s.Lag != want || s.InFlight != 0 || s.Members != 0 {
		w.fatalf("after opening: lag %d, want %d (records not done); stats %+v", s.Lag, want, s)
	}
}

// notDone counts the records the stream holds that are the group's and
// not done.
func (w *h13World) notDone() uint64 {
	var n uint64
	for o := max(w.stream.Oldest(), w.start); o < w.stream.Next(); o++ {
		if w.done[o] == "" {
			n++
		}
	}
	return n
}

func (w *h13World) join() string {
	w.memberSeq++
	id := fmt.Sprintf("m%d", w.memberSeq)
	p := 1 + w.rng.IntN(5)
	m, err := w.g.Join(id, p)
	if err != nil {
		w.fatalf("Join: %v", err)
	}
	w.members[id], w.prefetch[id] = m, p
	w.note("join %s prefetch %d", id, p)
	return id
}

func (w *h13World) anyMember() string {
	ids := make([]string, 0, len(w.members))
	for id := range w.members {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return w.join()
	}
	slices.Sort(ids)
	return ids[w.rng.IntN(len(ids))]
}

func (w *h13World) held(id string) []uint64 {
	var offs []uint64
	for o, f := range w.inflight {
		if f.member == id {
			offs = append(offs, o)
		}
	}
	slices.Sort(offs)
	return offs
}

// next runs Next on a member with room, bounded: Next may find only
// records it must skip and wait, and then its context ends it.
func (w *h13World) next(id string) {
	m := w.members[id]
	if len(w.held(id)) >= w.prefetch[id] {
		return
	}
	oldest := w.stream.Oldest()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	ds, err := m.Next(ctx, 1+w.rng.IntN(4))
	cancel()
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			w.fatalf("Next(%s): %v", id, err)
		}
		// It waited: there must have been nothing to hand it.
		g := w.g
		g.mu.Lock()
		ready, buf, readPos := g.ready.len(), len(g.buf), g.readPos
		due := len(g.delayed) > 0 && !g.delayed[0].due.After(w.clock.Now())
		g.mu.Unlock()
		if ready > 0 || buf > 0 || due || w.stream.Next() > readPos {
			w.fatalf("Next(%s) waited with work there: %d ready, %d buffered, a delay due %v, read to %d of %d",
				id, ready, buf, due, readPos, w.stream.Next())
		}
		return
	}
	w.note("next %s: %v %v", id, offsets(ds), attempts(ds))
	now := w.clock.Now()
	for _, d := range ds {
		o := d.Offset
		switch {
		case w.done[o] != "":
			w.fatalf("delivered %d (attempt %d), already %s", o, d.Attempt, w.done[o])
		case o < oldest:
			w.fatalf("delivered %d, which the stream no longer held (oldest %d)", o, oldest)
		case o < w.start:
			w.fatalf("delivered %d, before the group's start %d", o, w.start)
		case string(d.Payload) != fmt.Sprintf("rec-%d", o):
			w.fatalf("delivered %d with payload %q", o, d.Payload)
		case d.Attempt < 1 || (w.opts.MaxAttempts > 0 && d.Attempt > w.opts.MaxAttempts):
			w.fatalf("delivered %d as attempt %d", o, d.Attempt)
		case w.inflight[o].member != "":
			w.fatalf("delivered %d to %s, in flight to %s", o, id, w.inflight[o].member)
		case !w.uncertain[o] && d.Attempt != w.attempt[o]+1:
			w.fatalf("delivered %d as attempt %d, the last was %d", o, d.Attempt, w.attempt[o])
		}
		delete(w.uncertain, o)
		w.attempt[o] = d.Attempt
		w.inflight[o] = h13Flight{member: id, deadline: now.Add(w.opts.AckTimeout)}
	}
}

func (w *h13World) ack(id string) {
	held := w.held(id)
	var offs []uint64
	for _, o := range held {
		if w.rng.IntN(3) > 0 {
			offs = append(offs, o)
		}
	}
	var bad []uint64
	if w.rng.IntN(6) == 0 && w.stream.Next() > 0 { // strictness: an offset not in flight for it
		o := uint64(w.rng.IntN(int(w.stream.Next())))
		if w.inflight[o].member != id {
			offs = append(offs, o)
			bad = append(bad, o)
		}
	}
	if len(offs) == 0 {
		return
	}
	w.note("ack %s %v", id, offs)
	err := w.members[id].Ack(context.Background(), offs...)
	if len(bad) == 0 && err != nil {
		w.fatalf("Ack(%s, %v): %v", id, offs, err)
	}
	if len(bad) > 0 {
		var nif *NotInFlightError
		if !errors.As(err, &nif) || !slices.Equal(nif.Offsets, bad) {
			w.fatalf("Ack(%s, %v): %v, want not in flight %v", id, offs, err, bad)
		}
	}
	for _, o := range offs {
		if !slices.Contains(bad, o) {
			w.done[o] = "ack"
			delete(w.inflight, o)
		}
	}
}

func (w *h13World) nack(id string) {
	held := w.held(id)
	if len(held) == 0 {
		return
	}
	o := held[w.rng.IntN(len(held))]
	delay := time.Duration(0)
	if w.rng.IntN(2) == 0 {
		delay = time.Duration(1+w.rng.IntN(8)) * time.Second
	}
	w.note("nack %s %d delay %v", id, o, delay)
	if err := w.members[id].Nack(context.Background(), o, delay); err != nil {
		w.fatalf("Nack(%s, %d): %v", id, o, err)
	}
	delete(w.inflight, o)
}

func (w *h13World) tick() {
	now := w.clock.Advance(time.Duration(w.rng.IntN(13)) * time.Second)
	for o, f := range w.inflight {
		if !f.deadline.After(now) {
			delete(w.inflight, o)
		}
	}
	w.note("tick %v", now.Format(time.TimeOnly))
	w.g.Tick(now)
}

func (w *h13World) leave(id string) {
	m := w.members[id]
	held := w.held(id)
	delete(w.members, id)
	for _, o := range held {
		delete(w.inflight, o)
	}
	if w.rng.IntN(2) == 0 {
		w.note("leave %s", id)
		m.Leave()
		return
	}
	var seen []uint64
	for _, o := range held {
		if w.rng.IntN(2) == 0 {
			seen = append(seen, o)
		} else {
			w.attempt[o] = max(w.attempt[o]-1, 0)
		}
	}
	w.note("leave %s seen %v of %v", id, seen, held)
	m.LeaveSeen(seen...)
}

// endLife ends the group's life: a clean Close, or a crash (the group
// abandoned; its state log holds what was appended).
func (w *h13World) endLife(crash bool) {
	w.lostSeen += w.g.Stats().Lost
	if crash {
		w.crashed = true
		for o := range w.attempt {
			if w.done[o] == "" {
				w.uncertain[o] = true
			}
		}
		return
	}
	if err := w.g.Close(); err != nil {
		w.fatalf("Close: %v", err)
	}
}

func (w *h13World) restart(crash bool) {
	w.note("restart (crash %v)", crash)
	// What a clean restart must keep: the cursor, and every record
	// delivered and not done that the stream still holds (pending again),
	// except records at the top whose only delivery was given back unseen
	// (LeaveSeen: 0 attempts): never delivered, as far as the state log
	// knows, they are new records again.
	g := w.g
	oldest := w.stream.Oldest()
	g.mu.Lock()
	cursor, entries := g.cursorLocked(), map[uint64]int{}
	for off, e := range g.entries {
		entries[off] = e.attempts
	}
	g.mu.Unlock()
	w.endLife(crash)
	w.closeLogs()
	w.openLogs()
	var startAt *uint64
	if w.rng.IntN(2) == 0 {
		s := w.stream.Next() // ignored: the group has state
		startAt = &s
	}
	w.openGroup(startAt)
	if crash {
		return
	}
	s := w.g.Stats()
	keep := 0
	for off := range entries {
		if off >= oldest && off < s.Cursor {
			keep++
		}
	}
	for off := s.Cursor; off < cursor; off++ {
		if a, ok := entries[off]; !ok || a != 0 {
			w.fatalf("after a clean restart: cursor %d, before it %d; %d was not a record given back unseen", s.Cursor, cursor, off)
		}
	}
	if s.Cursor > cursor || s.Pending != keep {
		w.fatalf("after a clean restart: cursor %d, %d pending; before it cursor %d, %d records to keep; %+v",
			s.Cursor, s.Pending, cursor, keep, s)
	}
}

// recreateGroup deletes the group (its state) and makes it again.
func (w *h13World) recreateGroup() {
	w.endLife(false)
	w.state.Close()
	if err := os.RemoveAll(filepath.Join(w.dir, "state")); err != nil {
		w.fatalf("remove state: %v", err)
	}
	w.closeLogs()
	w.openLogs()
	var startAt *uint64
	switch w.rng.IntN(3) {
	case 1:
		s := w.stream.Next()
		startAt = &s
	case 2:
		s := uint64(w.rng.IntN(int(w.stream.Next()) + 2))
		startAt = &s
	}
	w.note("group deleted and made again, start %v", fmtStart(startAt))
	w.newEpoch(startAt)
}

func fmtStart(p *uint64) string {
	if p == nil {
		return "oldest"
	}
	return fmt.Sprint(*p)
}

// recreateStream deletes the stream and makes it again under the same
// name while the group's state is still there (a crash before it was
// removed): the state is clamped when the new log opens, before records
// are appended, and the group delivers the new records as new ones.
func (w *h13World) recreateStream() {
	w.endLife(w.rng.IntN(2) == 0)
	w.closeLogs()
	if err := os.RemoveAll(filepath.Join(w.dir, "stream")); err != nil {
		w.fatalf("remove stream: %v", err)
	}
	w.openLogs()
	if _, err := ClampState(w.state, w.stream.Next()); err != nil {
		w.fatalf("ClampState: %v", err)
	}
	w.backup = nil
	fill(w.t, w.stream, w.rng.IntN(4))
	w.note("stream deleted and made again, %d records", w.stream.Next())
	w.done, w.attempt, w.uncertain = map[uint64]string{}, map[uint64]int{}, map[uint64]bool{}
	w.lostSeen, w.start = 0, 0
	w.crashed = true // Lost of the group's lives before are not this stream's
	w.openGroup(nil)
}

// copyStream copies the stream's segment files (a backup, or the state
// of the disk before an unsynced tail is lost).
func (w *h13World) copyStream() {
	dir := filepath.Join(w.dir, "stream")
	ents, err := os.ReadDir(dir)
	if err != nil {
		w.fatalf("read stream dir: %v", err)
	}
	w.backup, w.backupNext = map[string][]byte{}, w.stream.Next()
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				w.fatalf("copy stream: %v", err)
			}
			w.backup[e.Name()] = b
		}
	}
	w.note("stream copied at %d", w.backupNext)
}

// restoreStream crashes and puts the copy back in place of the stream
// (as a machine crash that lost its unsynced tail, or a restored backup):
// the group's state beyond the copy's end is dropped as the log opens
// (ClampState), and the records appended next, which take those offsets,
// are new ones.
func (w *h13World) restoreStream() {
	w.note("stream restored to its copy at %d (was %d)", w.backupNext, w.stream.Next())
	w.endLife(true)
	w.closeLogs()
	dir := filepath.Join(w.dir, "stream")
	if err := os.RemoveAll(dir); err != nil {
		w.fatalf("remove stream: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.fatalf("mkdir stream: %v", err)
	}
	for name, b := range w.backup {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			w.fatalf("restore stream: %v", err)
		}
	}
	w.openLogs()
	if w.stream.Next() != w.backupNext {
		w.fatalf("restored stream ends at %d, want %d", w.stream.Next(), w.backupNext)
	}
	for _, m := range []map[uint64]string{w.done} {
		for o := range m {
			if o >= w.backupNext {
				delete(m, o)
			}
		}
	}
	for o := range w.attempt {
		if o >= w.backupNext {
			delete(w.attempt, o)
			delete(w.uncertain, o)
		}
	}
	w.start = min(w.start, w.backupNext)
	w.openGroup(nil)
}

func (w *h13World) step() {
	switch r := w.rng.IntN(100); {
	case r < 15:
		n := 1 + w.rng.IntN(5)
		fill(w.t, w.stream, n)
		w.note("publish %d, next %d", n, w.stream.Next())
	case r < 40:
		w.next(w.anyMember())
	case r < 55:
		w.ack(w.anyMember())
	case r < 62:
		w.nack(w.anyMember())
	case r < 72:
		w.tick()
	case r < 74:
		w.leave(w.anyMember())
	case r < 76:
		w.join()
	case r < 80:
		if w.backup == nil || w.rng.IntN(2) == 0 {
			w.copyStream()
		} else {
			w.restoreStream()
		}
	case r < 81:
		w.backup = nil // no longer a prefix of the stream
		_, n, err := w.stream.Purge()
		if err != nil {
			w.fatalf("Purge: %v", err)
		}
		w.note("purge: %d removed, oldest %d", n, w.stream.Oldest())
	case r < 83:
		w.backup = nil
		to := w.stream.Oldest() + uint64(w.rng.IntN(int(w.stream.Next()-w.stream.Oldest())+1))
		if err := w.stream.TruncateBefore(to); err != nil {
			w.fatalf("TruncateBefore: %v", err)
		}
		w.note("retention before %d: oldest %d", to, w.stream.Oldest())
	case r < 86:
		w.failDL = !w.failDL
		w.note("dead letters fail: %v", w.failDL)
	case r < 91:
		w.restart(false)
	case r < 96:
		w.restart(true)
	case r < 98:
		w.recreateGroup()
	default:
		w.recreateStream()
	}
}

// drain consumes and acks everything left, then checks the end state.
func (w *h13World) drain() {
	w.failDL = false
	w.note("drain")
	if len(w.members) == 0 {
		w.join()
	}
	for range 200 {
		s := w.g.Stats()
		// Records the stream dropped count as lost once the group reaches
		// them: its cursor must pass them.
		if s.Lag == 0 && s.InFlight == 0 && s.Pending == 0 && s.Buffered == 0 && s.Cursor >= w.stream.Oldest() {
			break
		}
		now := w.clock.Advance(15 * time.Second)
		clear(w.inflight) // all timed out
		w.g.Tick(now)
		for id := range w.members {
			w.next(id)
			if held := w.held(id); len(held) > 0 {
				if err := w.members[id].Ack(context.Background(), held...); err != nil {
					w.fatalf("drain Ack: %v", err)
				}
				for _, o := range held {
					w.done[o] = "ack"
					delete(w.inflight, o)
				}
			}
		}
	}
	s := w.g.Stats()
	if s.Lag != 0 || s.InFlight != 0 || s.Pending != 0 || s.Buffered != 0 || s.StateErrors != 0 {
		w.fatalf("not drained: %+v", s)
	}
	oldest, next := w.stream.Oldest(), w.stream.Next()
	var lost uint64
	for o := w.start; o < next; o++ {
		switch {
		case w.done[o] != "":
		case o >= oldest:
			w.fatalf("record %d (oldest %d, next %d) never done", o, oldest, next)
		default:
			lost++
		}
	}
	got := w.lostSeen + s.Lost
	if got < lost || (!w.crashed && got != lost) {
		w.fatalf("lost %d (crashed %v), want %d", got, w.crashed, lost)
	}
}

// seedRange is the seeds a model test runs: the first n (3 with -short),
// or first:count from the environment variable env, to explore more.
func seedRange(t *testing.T, env string, n int) (first, end uint64) {
	seeds := n
	if testing.Short() {
		seeds = 3
	}
	if v := os.Getenv(env); v != "" {
		if _, err := fmt.Sscanf(v, "%d:%d", &first, &seeds); err != nil {
			t.Fatalf("%s=%q: %v", env, v, err)
		}
	}
	return first, first + uint64(seeds)
}

func TestHunt13DurableGroupModel(t *testing.T) {
	// FELIX_HUNT13_SEEDS=first:count explores more seeds.
	first, end := seedRange(t, "FELIX_HUNT13_SEEDS", 6)
	for seed := first; seed < end; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := newH13World(t, seed)
			for range 400 {
				w.step()
			}
			w.drain()
			// A clean restart after the drain: nothing comes back.
			w.restart(false)
			if s := w.g.Stats(); s.Lag != 0 || s.Pending != 0 {
				w.fatalf("after a clean restart of a drained group: %+v", s)
			}
			// The state log stays bounded (snapshots truncate it).
			if kept := w.state.Next() - w.state.Oldest(); kept > uint64(max(64, 2*w.opts.SnapshotEvery)) {
				w.fatalf("state log keeps %d records (%d..%d)", kept, w.state.Oldest(), w.state.Next())
			}
			w.g.Close()
		})
	}
}
