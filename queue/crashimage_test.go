package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// ciWorld drives a durable group over a disk stream, both logs under one
// sync policy (the broker opens a group's state log with its stream's),
// with small segments (rolls, and state-log truncations after
// snapshots), and at random points takes a crash image: the files of
// both logs as they are on disk while they are open, the group never
// closed. Each image is cut the ways a crash can leave it (a torn tail,
// a crash before the operation under way wrote anything, a roll or a
// truncation cut short) and checked in a fork of its own: the logs open
// from it, and the group rebuilt from them (after ClampState, as the
// broker does) keeps exactly the acks and dead letters whose state
// records the image holds, gives back every other record the stream
// holds, each with an attempt count between the one its last durable
// state write knew and the highest it ever had, and says so in Lag. The
// fork is then drained (every record delivered or dead-lettered once,
// its stats counting exactly that) and crashed again as a process crash:
// it reopens with nothing left to do. The live group goes on as if
// nothing happened; under SyncAlways every step returns with the state
// log fsynced to its end. (hunt13's model covers
// restarts of one group through clean closes and whole-file process
// crashes; hunt13_torn cuts one fixed log at every byte.)
type ciWorld struct {
	opTrace
	rng        *rand.Rand
	policy     commitlog.SyncPolicy
	rollBehind bool
	syncEvery  time.Duration // SyncInterval's
	dir        string
	forkRoot   string // the forks' directories
	clock      *fakeClock
	opts       Options
	quiet      *slog.Logger

	stream, state *commitlog.DiskLog
	stateLog      *ciStateLog // state, as the group's StateLog
	g             *Group
	members       map[string]*Member
	prefetch      map[string]int
	memberSeq     int

	// the model
	inflight   map[uint64]ciFlight
	attempt    map[uint64]int    // the group's count of each record delivered and not done
	maxAttempt map[uint64]int    // the highest count each record ever had
	doneAt     map[uint64]uint64 // the state-log offset of the record that made it done
	doneHow    map[uint64]string // "ack" or "dead"
	// checkpoints: after each operation that wrote state records (every
	// write carries every count not yet written: takeDirtyLocked, or a
	// snapshot), the state log's end and the counts then. A replay of the
	// log to at least that end holds at least those counts.
	checkpoints []ciCheckpoint
	dropDead    bool // the DeadLetter func returns ErrDeadLetterDropped

	forkSeq, images, rejected int
	cover                     map[string]int // what the images checked held, for the log
}

type ciFlight struct {
	member   string
	deadline time.Time
}

type ciCheckpoint struct {
	end    uint64
	counts map[uint64]int
}

func newCIWorld(t *testing.T, seed uint64) *ciWorld {
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f491))
	w := &ciWorld{opTrace: opTrace{t: t}, rng: rng, dir: t.TempDir(), forkRoot: t.TempDir(), clock: newFakeClock(),
		policy:     []commitlog.SyncPolicy{commitlog.SyncAlways, commitlog.SyncInterval, commitlog.SyncNever}[seed%3],
		rollBehind: (seed/3)%2 == 1, syncEvery: time.Hour,
		quiet:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		inflight: map[uint64]ciFlight{}, attempt: map[uint64]int{}, maxAttempt: map[uint64]int{},
		doneAt: map[uint64]uint64{}, doneHow: map[uint64]string{}, members: map[string]*Member{}, prefetch: map[string]int{},
		cover: map[string]int{}}
	w.opts = Options{Clock: w.clock, AckTimeout: 10 * time.Second, BackoffMin: time.Second, BackoffMax: 4 * time.Second,
		MaxAttempts: []int{1, 2, 3, -1}[rng.IntN(4)], ReadBatch: 1 + rng.IntN(5),
		SnapshotEvery: []int{1, 2, 4, 8}[rng.IntN(4)], DeadLetter: w.deadLetter}
	if seed >= 6 && (seed/6)%2 == 1 {
		w.syncEvery = time.Millisecond // fsyncs while the images are taken
	}
	w.note("policy %v, roll in background %v, max attempts %d, snapshot every %d", w.policy, w.rollBehind, w.opts.MaxAttempts, w.opts.SnapshotEvery)
	var err error
	w.stream, w.state, err = w.openLogs(w.dir)
	if err != nil {
		w.fatalf("open logs: %v", err)
	}
	t.Cleanup(func() {
		w.stream.Close()
		w.state.Close()
	})
	w.stateLog = &ciStateLog{DiskLog: w.state}
	fill(t, w.stream, 5)
	o := w.opts
	o.StateLog = w.stateLog
	if w.g, err = NewGroup("g", w.stream, o); err != nil {
		w.fatalf("NewGroup: %v", err)
	}
	return w
}

// logOptions are both logs' options. Under SyncInterval the fsync
// comes after an hour (the first six seeds; some of the others: a
// millisecond): what is synced is what rolls and truncations sync, so
// the images do not depend on a timer.
func (w *ciWorld) logOptions(segment int64) commitlog.Options {
	return commitlog.Options{Sync: w.policy, SyncInterval: w.syncEvery, SegmentBytes: segment, Logger: w.quiet,
		RetentionInterval: -1, RollInBackground: w.rollBehind}
}

func (w *ciWorld) openLogs(dir string) (stream, state *commitlog.DiskLog, err error) {
	return w.openLogsLogged(dir, w.quiet)
}

// openLogsLogged opens the logs in dir, the state log's messages to
// stateLog.
func (w *ciWorld) openLogsLogged(dir string, stateLog *slog.Logger) (stream, state *commitlog.DiskLog, err error) {
	stream, err = commitlog.Open(filepath.Join(dir, "stream"), w.logOptions(400))
	if err != nil {
		return nil, nil, err
	}
	opts := w.logOptions(160)
	opts.Logger = stateLog
	state, err = commitlog.Open(filepath.Join(dir, "state"), opts)
	if err != nil {
		stream.Close()
		return nil, nil, err
	}
	return stream, state, nil
}

func (w *ciWorld) deadLetter(_ context.Context, rec commitlog.Record, attempts int, _ string) error {
	o := rec.Offset
	switch {
	case w.doneHow[o] != "":
		w.fatalf("dead letter of %d, already %s", o, w.doneHow[o])
	case attempts != w.opts.MaxAttempts || w.attempt[o] != attempts:
		w.fatalf("dead letter of %d after %d attempts (model %d)", o, attempts, w.attempt[o])
	case string(rec.Payload) != fmt.Sprintf("rec-%d", o):
		w.fatalf("dead letter of %d with payload %q", o, rec.Payload)
	}
	// The group writes the dead letters of a round in one record after
	// the calls, and nothing else meanwhile (the test drives it from one
	// goroutine): that record is the next one.
	w.doneAt[o], w.doneHow[o] = w.state.Next(), "dead"
	delete(w.attempt, o)
	w.note("dead-lettered %d (state record %d)", o, w.doneAt[o])
	if w.dropDead {
		return ErrDeadLetterDropped
	}
	return nil
}

func (w *ciWorld) join() string {
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

func (w *ciWorld) anyMember() string {
	if len(w.members) == 0 {
		return w.join()
	}
	ids := slices.Sorted(maps.Keys(w.members))
	return ids[w.rng.IntN(len(ids))]
}

func (w *ciWorld) held(id string) []uint64 {
	var offs []uint64
	for o, f := range w.inflight {
		if f.member == id {
			offs = append(offs, o)
		}
	}
	slices.Sort(offs)
	return offs
}

func (w *ciWorld) next(id string) {
	if len(w.held(id)) >= w.prefetch[id] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	ds, err := w.members[id].Next(ctx, w.rng.IntN(4))
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		return
	}
	if err != nil {
		w.fatalf("Next(%s): %v", id, err)
	}
	w.note("next %s: %v %v", id, offsets(ds), attempts(ds))
	now := w.clock.Now()
	for _, d := range ds {
		o := d.Offset
		switch {
		case w.doneHow[o] != "":
			w.fatalf("delivered %d, already %s", o, w.doneHow[o])
		case w.inflight[o].member != "":
			w.fatalf("delivered %d to %s, in flight to %s", o, id, w.inflight[o].member)
		case d.Attempt != w.attempt[o]+1:
			w.fatalf("delivered %d as attempt %d, the last was %d", o, d.Attempt, w.attempt[o])
		case string(d.Payload) != fmt.Sprintf("rec-%d", o):
			w.fatalf("delivered %d with payload %q", o, d.Payload)
		}
		w.attempt[o] = d.Attempt
		w.maxAttempt[o] = max(w.maxAttempt[o], d.Attempt)
		w.inflight[o] = ciFlight{member: id, deadline: now.Add(w.opts.AckTimeout)}
	}
}

func (w *ciWorld) ack(id string) {
	var offs []uint64
	for _, o := range w.held(id) {
		if w.rng.IntN(3) > 0 {
			offs = append(offs, o)
		}
	}
	if len(offs) == 0 {
		return
	}
	at := w.state.Next() // the Ack's ops record (or the snapshot that carries it)
	w.note("ack %s %v (state record %d)", id, offs, at)
	if err := w.members[id].Ack(context.Background(), offs...); err != nil {
		w.fatalf("Ack(%s, %v): %v", id, offs, err)
	}
	for _, o := range offs {
		w.doneAt[o], w.doneHow[o] = at, "ack"
		delete(w.inflight, o)
		delete(w.attempt, o)
	}
}

func (w *ciWorld) nack(id string) {
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
	delete(w.inflight, o)
	if err := w.members[id].Nack(context.Background(), o, delay); err != nil {
		w.fatalf("Nack(%s, %d): %v", id, o, err)
	}
	if w.opts.exhausted(w.maxAttempt[o]) && o >= w.stream.Oldest() && w.doneHow[o] != "dead" {
		w.fatalf("nack of %d after its last attempt: not dead-lettered", o)
	}
}

func (w *ciWorld) tick() {
	now := w.clock.Advance(time.Duration(w.rng.IntN(13)) * time.Second)
	for o, f := range w.inflight {
		if !f.deadline.After(now) {
			delete(w.inflight, o)
		}
	}
	w.note("tick %v", now.Format(time.TimeOnly))
	w.g.Tick(now)
}

func (w *ciWorld) leave(id string) {
	m, held := w.members[id], w.held(id)
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

// restart closes the group and opens it again from its state log: the
// deliveries in flight are pending, their counts kept.
func (w *ciWorld) restart() {
	w.note("restart")
	if err := w.g.Close(); err != nil {
		w.fatalf("Close: %v", err)
	}
	o := w.opts
	o.StateLog = w.stateLog
	g, err := NewGroup("g", w.stream, o)
	if err != nil {
		w.fatalf("NewGroup after Close: %v", err)
	}
	w.g, w.members, w.prefetch, w.inflight = g, map[string]*Member{}, map[string]int{}, map[uint64]ciFlight{}
}

// step runs one random operation and notes a checkpoint if it wrote
// state records.
func (w *ciWorld) step() {
	before := w.state.Next()
	switch r := w.rng.IntN(100); {
	case r < 14:
		n := 1 + w.rng.IntN(4)
		fill(w.t, w.stream, n)
		w.note("publish %d, next %d", n, w.stream.Next())
	case r < 42:
		w.next(w.anyMember())
	case r < 62:
		w.ack(w.anyMember())
	case r < 72:
		w.nack(w.anyMember())
	case r < 86:
		w.tick()
	case r < 91:
		w.leave(w.anyMember())
	case r < 95:
		w.join()
	case r < 96:
		w.dropDead = !w.dropDead
	case r < 98:
		w.restart()
	default:
		_, n, err := w.stream.Purge()
		if err != nil {
			w.fatalf("Purge: %v", err)
		}
		w.note("purge: %d removed, oldest %d", n, w.stream.Oldest())
	}
	if s := w.state.Stats(); w.policy == commitlog.SyncAlways && s.Synced < s.Next {
		w.fatalf("a step returned with state records %d..%d not fsynced under SyncAlways", s.Synced, s.Next)
	}
	if w.state.Next() != before {
		w.checkpoints = append(w.checkpoints, ciCheckpoint{end: w.state.Next(), counts: maps.Clone(w.attempt)})
	}
}

// ciImage is a directory's files as a crash left them.
type ciImage map[string][]byte

// readImage copies the files of dir as they are on disk now, while the
// log is open (a file removed meanwhile, a spare segment, is left out).
func (w *ciWorld) readImage(dir string) ciImage {
	ents, err := os.ReadDir(dir)
	if err != nil {
		w.fatalf("read %s: %v", dir, err)
	}
	img := ciImage{}
	for _, e := range ents {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			w.fatalf("read %s: %v", e.Name(), err)
		}
		img[e.Name()] = b
	}
	return img
}

func (img ciImage) segments() []string {
	var names []string
	for name := range img {
		if strings.HasSuffix(name, ".log") {
			names = append(names, name)
		}
	}
	slices.Sort(names) // zero-padded bases
	return names
}

func (img ciImage) clone() ciImage {
	c := ciImage{}
	for k, v := range img {
		c[k] = slices.Clone(v)
	}
	return c
}

func (img ciImage) write(t *testing.T, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range img {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// crashStep runs a step as the one a crash interrupts: images of the
// disk before and after it, and of the segment files the step's
// truncations deleted, as they were just before (ciStateLog); and the
// logs' fsynced ends before it (the step's own writes are not
// confirmed: a crash may lose any of them).
func (w *ciWorld) crashStep() {
	stateDir, streamDir := filepath.Join(w.dir, "state"), filepath.Join(w.dir, "stream")
	pre, preStream := w.readImage(stateDir), w.readImage(streamDir)
	known := pre.clone() // every file of the step, as last seen
	synced, streamSynced := w.state.Stats().Synced, w.stream.Stats().Synced
	preNext, oldest := w.state.Next(), w.state.Oldest()
	// A truncation syncs the log before it deletes anything: a crash
	// after it keeps what it synced.
	truncSynced := synced
	w.stateLog.beforeTruncate = func() { maps.Copy(known, w.readImage(stateDir)) }
	w.stateLog.afterTruncate = func() { truncSynced = w.state.Stats().Synced }
	w.step()
	w.stateLog.beforeTruncate, w.stateLog.afterTruncate = nil, nil
	post, postStream := w.readImage(stateDir), w.readImage(streamDir)
	deleted := w.state.Oldest() != oldest
	w.note("crash image (state %d..%d, synced %d before, %d at the last truncation)", w.state.Oldest(), w.state.Next(), synced, truncSynced)
	// The rarer images (a step that rolled or truncated) are the likelier.
	kinds := []string{"full", "before", "torn", "torn"}
	if deleted {
		kinds = append(kinds, "truncation", "truncation")
	}
	if rolled(pre, post) {
		kinds = append(kinds, "roll", "roll", "roll")
	}
	for range 2 {
		stream := w.cutStream(preStream, postStream, streamSynced)
		switch kinds[w.rng.IntN(len(kinds))] {
		case "full": // the disk as it is
			w.checkImage("full", post, stream, w.state.Next(), w.state.Next())
		case "before": // nothing of the step reached the disk
			w.checkImage("before the step", pre, stream, preNext, preNext)
		case "truncation":
			w.checkImage("truncation cut short", w.midTruncation(known, post), stream, w.state.Next(), w.state.Next())
		case "roll":
			img, how := w.rollCutShort(known, post)
			w.checkImage(how, img, stream, synced, 0)
		default:
			img, how := w.tornImage(pre, known, post, deleted)
			min := synced
			if deleted && !strings.Contains(how, "before the deletion") {
				min = truncSynced
			}
			w.checkImage(how, img, stream, min, 0)
		}
	}
}

// activeStateBytes is the size of the state log's last segment file.
func (w *ciWorld) activeStateBytes() int64 {
	ents, err := os.ReadDir(filepath.Join(w.dir, "state"))
	if err != nil {
		w.fatalf("read state dir: %v", err)
	}
	for i := len(ents) - 1; i >= 0; i-- {
		if strings.HasSuffix(ents[i].Name(), ".log") {
			if fi, err := ents[i].Info(); err == nil {
				return fi.Size()
			}
			return 0
		}
	}
	return 0
}

// union is post with the segment files the step deleted put back, as
// they were when deleted (known): the disk after the step's appends,
// before its truncations deleted anything.
func union(known, post ciImage) ciImage {
	img := post.clone()
	for name, b := range known {
		if _, ok := img[name]; !ok && name != "segment.next" {
			img[name] = slices.Clone(b)
		}
	}
	return img
}

// ciStateLog is the live group's state log: a test sees the files just
// before a truncation deletes any.
type ciStateLog struct {
	*commitlog.DiskLog
	beforeTruncate, afterTruncate func()
}

func (l *ciStateLog) TruncateBefore(offset uint64) error {
	if l.beforeTruncate != nil {
		l.beforeTruncate()
	}
	err := l.DiskLog.TruncateBefore(offset)
	if l.afterTruncate != nil {
		l.afterTruncate()
	}
	return err
}

// tornImage is the state log cut at a random byte of its last segment
// (a torn tail), with what a crash during a roll leaves: the new segment
// not made yet or its header incomplete, a spare segment file left
// behind, the sealed segment's index missing or cut.
// Under SyncAlways a cut keeps what was there before the step (fsynced),
// and a step that deleted segments had fsynced everything first: the
// image is cut before the deletion.
func (w *ciWorld) tornImage(pre, known, post ciImage, deleted bool) (ciImage, string) {
	always := w.policy == commitlog.SyncAlways
	img, how := post.clone(), "torn tail"
	if w.rng.IntN(2) == 0 || (deleted && always) {
		img, how = union(known, post), "torn tail before the deletion"
	}
	segs := img.segments()
	last := segs[len(segs)-1]
	if len(img[last]) <= 32 && len(segs) > 1 && w.rng.IntN(2) == 0 {
		delete(img, last) // the roll had not made it yet
		how += ", the new segment not made"
		segs = segs[:len(segs)-1]
		last = segs[len(segs)-1]
	}
	b, from := img[last], 0
	if always {
		from = len(pre[last])
	}
	cut := from + w.rng.IntN(len(b)-from+1)
	if w.rng.IntN(3) == 0 {
		cut = len(b) - w.rng.IntN(min(len(b)-from, 40)+1) // near the end: within the last records
	}
	img[last] = b[:cut]
	how += fmt.Sprintf(", last segment cut: %s at %d of %d", last, cut, len(b))
	if cut < 32 && w.rng.IntN(2) == 0 {
		img[last] = make([]byte, 32) // a spare's zeros, its header not written
		how += ", header zeros"
	}
	if w.rng.IntN(4) == 0 {
		img["segment.next"] = make([]byte, w.rng.IntN(40))
		how += ", a spare left"
	}
	if len(segs) > 1 && w.rng.IntN(3) == 0 {
		idx := strings.TrimSuffix(segs[len(segs)-2], ".log") + ".index"
		if b, ok := img[idx]; ok {
			img[idx] = b[:w.rng.IntN(len(b)+1)]
			how += ", the sealed segment's index cut"
		}
	}
	return img, how
}

// rolled reports whether the step started a segment.
func rolled(pre, post ciImage) bool {
	segs := post.segments()
	_, ok := pre[segs[len(segs)-1]]
	return !ok
}

// rollCutShort is the disk after the step's appends up to the roll that
// started its last segment, cut short there: that segment not made yet,
// or made with its header incomplete (or a spare's zeros), none of its
// records written; the sealed segment's index not written, or cut.
func (w *ciWorld) rollCutShort(known, post ciImage) (ciImage, string) {
	img := union(known, post)
	segs := img.segments()
	last := segs[len(segs)-1]
	var how string
	switch w.rng.IntN(3) {
	case 0:
		delete(img, last)
		how = "roll cut short: " + last + " not made"
	case 1:
		img[last] = img[last][:w.rng.IntN(33)]
		how = fmt.Sprintf("roll cut short: %s header cut at %d", last, len(img[last]))
	default:
		img[last] = make([]byte, 32)
		how = "roll cut short: " + last + " header zeros"
	}
	idx := strings.TrimSuffix(segs[len(segs)-2], ".log") + ".index"
	if b, ok := img[idx]; ok && w.rng.IntN(2) == 0 {
		img[idx] = b[:w.rng.IntN(len(b)+1)]
		how += ", the sealed segment's index cut"
	}
	return img, how
}

// midTruncation is post with the last few segment files the step's
// truncation deleted still there (it deletes the oldest first), and the
// index files of the others (it deletes a segment, then its index).
func (w *ciWorld) midTruncation(known, post ciImage) ciImage {
	img := post.clone()
	var gone []string
	for _, name := range known.segments() {
		if _, ok := post[name]; !ok {
			gone = append(gone, name)
		}
	}
	from := w.rng.IntN(len(gone) + 1)
	for i, name := range gone {
		idx := strings.TrimSuffix(name, ".log") + ".index"
		if i >= from {
			img[name] = slices.Clone(known[name])
		}
		if b, ok := known[idx]; ok && (i >= from || w.rng.IntN(2) == 0) {
			img[idx] = slices.Clone(b)
		}
	}
	return img
}

// cutStream is the stream's image with its last segment cut at a random
// byte: a crash may lose the records not fsynced (synced is the end of
// those that were before the step; under SyncAlways, all the segment
// held before it).
func (w *ciWorld) cutStream(pre, post ciImage, synced uint64) streamImage {
	if w.rng.IntN(2) == 0 {
		return streamImage{img: post, min: w.stream.Next()}
	}
	img := post.clone()
	segs := img.segments()
	last := segs[len(segs)-1]
	from := 0
	if w.policy == commitlog.SyncAlways {
		from = min(len(pre[last]), len(img[last]))
	}
	img[last] = img[last][:from+w.rng.IntN(len(img[last])-from+1)]
	return streamImage{img: img, min: synced}
}

type streamImage struct {
	img ciImage
	min uint64 // the image is a crash's only if the log keeps at least this
}

// checkImage opens the logs from the images in a fork and checks the
// group rebuilt from them. The state log must keep at least minKept
// records (fewer: not a crash image, skipped), exactly wantKept when
// that is not 0.
func (w *ciWorld) checkImage(how string, state ciImage, stream streamImage, minKept, wantKept uint64) {
	t := w.t
	w.forkSeq++
	dir := filepath.Join(w.forkRoot, fmt.Sprint(w.forkSeq))
	defer os.RemoveAll(dir) // once the fork's logs are closed
	state.write(t, filepath.Join(dir, "state"))
	stream.img.write(t, filepath.Join(dir, "stream"))
	warned := &ciWarnings{}
	st, sl, err := w.openLogsLogged(dir, slog.New(warned))
	if err != nil {
		w.fatalf("image %q: open: %v", how, err)
	}
	if cut := sl.Stats().RecoveryTruncatedBytes; cut > 0 && !warned.has("torn tail") {
		w.fatalf("image %q: the state log dropped %d bytes of a torn tail, and said nothing: %v", how, cut, warned.msgs)
	}
	kept, end := sl.Next(), st.Next()
	if kept < minKept || end < stream.min {
		st.Close()
		sl.Close()
		w.rejected++
		return // not what a crash leaves
	}
	if wantKept != 0 && kept != wantKept {
		w.fatalf("image %q: the state log opens with %d records, want %d", how, kept, wantKept)
	}
	w.images++
	f := &ciFork{w: w, how: fmt.Sprintf("%s; state records to %d, stream to %d", how, kept, end), dir: dir,
		clock: newFakeClock(), seen: map[uint64]bool{}, lo: map[uint64]int{}, hi: map[uint64]int{}, want: map[uint64]bool{}}
	f.clock.Set(w.clock.Now())
	f.lo = w.lowCounts(kept)
	for _, tag := range strings.Split(how, ", ") {
		w.cover[strings.Split(tag, ":")[0]]++
	}
	if end < w.stream.Next() {
		w.cover["stream cut"]++
	}
	for o := st.Oldest(); o < end; o++ {
		if at, ok := w.doneAt[o]; ok && at < kept {
			continue // done for good
		}
		f.want[o] = true
		f.hi[o] = w.maxAttempt[o]
		if w.doneHow[o] != "" {
			w.cover["lost "+w.doneHow[o]]++
		}
	}
	f.run(st, sl)
}

// lowCounts is the least count of each record a replay of the state
// log's first kept records holds: the counts the last operation whose
// records it keeps wrote, unless the next one's records (which it may
// keep in part) hold a lower one (a snapshot writes the counts
// LeaveSeen lowered).
func (w *ciWorld) lowCounts(kept uint64) map[uint64]int {
	i := len(w.checkpoints) - 1
	for i >= 0 && w.checkpoints[i].end > kept {
		i--
	}
	lo := map[uint64]int{}
	if i >= 0 {
		lo = maps.Clone(w.checkpoints[i].counts)
	}
	if i+1 < len(w.checkpoints) {
		for o, c := range w.checkpoints[i+1].counts {
			lo[o] = min(lo[o], c)
		}
	}
	return lo
}

// ciFork is a group rebuilt from a crash image.
type ciFork struct {
	w     *ciWorld
	how   string
	dir   string
	clock *fakeClock
	want  map[uint64]bool // records the fork must give out (deliver or dead-letter) once
	seen  map[uint64]bool
	// what the fork gave out: deliveries (acked at once), redeliveries
	// among them, dead letters
	delivered, redelivered, dead uint64
	lo                           map[uint64]int // a redelivered record's count: at least this
	hi                           map[uint64]int // and at most this
}

func (f *ciFork) fatalf(format string, args ...any) {
	f.w.t.Helper()
	f.w.fatalf("image %q: %s", f.how, fmt.Sprintf(format, args...))
}

// run checks the group rebuilt from stream and state, which it closes.
func (f *ciFork) run(stream, state *commitlog.DiskLog) {
	w := f.w
	if _, err := ClampState(state, stream.Next()); err != nil {
		f.fatalf("ClampState: %v", err)
	}
	g := f.open(stream, state)
	s := g.Stats()
	switch {
	case s.Lag != uint64(len(f.want)):
		f.fatalf("lag %d after the restart, want %d (records not done: %v); %+v", s.Lag, len(f.want), slices.Sorted(maps.Keys(f.want)), s)
	case s.Cursor > stream.Next() || s.Floor > s.Cursor || uint64(s.Pending+s.Buffered) > s.Lag:
		f.fatalf("stats after the restart: %+v (stream to %d)", s, stream.Next())
	}
	for o := range f.want {
		if o < s.Floor {
			f.fatalf("floor %d above %d, which is not done", s.Floor, o)
		}
	}
	// New records take the offsets the stream lost: new ones.
	n := w.rng.IntN(3)
	for i := range uint64(n) {
		o := stream.Next() + i
		f.want[o], f.lo[o], f.hi[o] = true, 0, 0
	}
	fill(w.t, stream, n)
	f.drain(g)
	// A process crash now loses nothing: the group opens drained.
	stream.Close()
	state.Close()
	var err error
	if stream, state, err = w.openLogs(f.dir); err != nil {
		f.fatalf("reopen after the drain: %v", err)
	}
	defer stream.Close()
	defer state.Close()
	g = f.open(stream, state)
	if s := g.Stats(); s.Lag != 0 || s.Pending != 0 {
		f.fatalf("after a crash of the drained fork: %+v", s)
	}
	if err := g.Close(); err != nil {
		f.fatalf("Close: %v", err)
	}
}

func (f *ciFork) open(stream, state *commitlog.DiskLog) *Group {
	o := f.w.opts
	o.Clock, o.StateLog, o.DeadLetter = f.clock, state, f.deadLetter
	g, err := NewGroup("g", stream, o)
	if err != nil {
		f.fatalf("NewGroup: %v", err)
	}
	return g
}

// give checks that o, given out with count, may be.
func (f *ciFork) give(o uint64, count int, what string) {
	switch {
	case !f.want[o]:
		f.fatalf("%s %d, done for good before the crash (%s at state record %d)", what, o, f.w.doneHow[o], f.w.doneAt[o])
	case f.seen[o]:
		f.fatalf("%s %d again", what, o)
	case count < f.lo[o] || count > f.hi[o]:
		f.fatalf("%s %d with %d earlier attempts, want %d to %d", what, o, count, f.lo[o], f.hi[o])
	}
	f.seen[o] = true
}

func (f *ciFork) deadLetter(_ context.Context, rec commitlog.Record, attempts int, reason string) error {
	if attempts != f.w.opts.MaxAttempts || !strings.Contains(reason, "pending at restart") {
		f.fatalf("dead letter of %d after %d attempts: %s", rec.Offset, attempts, reason)
	}
	f.give(rec.Offset, attempts, "dead-lettered")
	f.dead++
	f.w.cover["dead-lettered at restart"]++
	return nil
}

// drain takes and acks everything, ticking past every backoff.
func (f *ciFork) drain(g *Group) {
	m, err := g.Join("d", 1+f.w.rng.IntN(8))
	if err != nil {
		f.fatalf("Join: %v", err)
	}
	for range 100 {
		if s := g.Stats(); s.Lag == 0 && len(f.seen) == len(f.want) {
			break
		}
		g.Tick(f.clock.Advance(time.Minute))
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
			ds, err := m.Next(ctx, 0)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				f.fatalf("Next: %v", err)
			}
			for _, d := range ds {
				if string(d.Payload) != fmt.Sprintf("rec-%d", d.Offset) {
					f.fatalf("delivered %d with payload %q", d.Offset, d.Payload)
				}
				f.give(d.Offset, d.Attempt-1, "delivered")
				f.delivered++
				if d.Attempt > 1 {
					f.redelivered++
				}
			}
			if err := m.Ack(context.Background(), offsets(ds)...); err != nil {
				f.fatalf("Ack: %v", err)
			}
		}
	}
	s := g.Stats()
	if s.Lag != 0 || s.InFlight != 0 || s.Pending != 0 || s.StateErrors != 0 || len(f.seen) != len(f.want) {
		var missing []uint64
		for o := range f.want {
			if !f.seen[o] {
				missing = append(missing, o)
			}
		}
		slices.Sort(missing)
		f.fatalf("not drained: never given out %v; %+v", missing, s)
	}
	if s.Delivered != f.delivered || s.Acked != f.delivered || s.Redelivered != f.redelivered || s.DeadLettered != f.dead {
		f.fatalf("stats after the drain: %+v; gave out %d deliveries (%d redeliveries), %d dead letters", s, f.delivered, f.redelivered, f.dead)
	}
}

func TestCrashImageDurableGroupModel(t *testing.T) {
	// FELIX_CRASHIMAGE_SEEDS=first:count explores more seeds; the first
	// six cover each sync policy with and without RollInBackground.
	first, end := seedRange(t, "FELIX_CRASHIMAGE_SEEDS", 6)
	for seed := first; seed < end; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := newCIWorld(t, seed)
			for range 300 {
				// A crash is likelier where the step may roll the state log.
				if p := w.rng.IntN(100); p < 5 || (p < 20 && w.activeStateBytes() > 120) {
					w.crashStep()
				} else {
					w.step()
				}
			}
			if w.images < 3 {
				t.Fatalf("only %d crash images checked (%d rejected): the test wants more", w.images, w.rejected)
			}
			t.Logf("%d crash images checked, %d rejected (not a crash's), state log %d..%d: %v",
				w.images, w.rejected, w.state.Oldest(), w.state.Next(), w.cover)
		})
	}
}

// ciWarnings keeps the warnings a log writes when it opens.
type ciWarnings struct {
	mu   sync.Mutex
	msgs []string
}

func (h *ciWarnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *ciWarnings) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *ciWarnings) WithGroup(string) slog.Handler                { return h }

func (h *ciWarnings) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *ciWarnings) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.msgs, func(m string) bool { return strings.Contains(m, s) })
}
