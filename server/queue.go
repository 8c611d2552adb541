package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/queue"
	"github.com/felixmq/felix/wire"
)

// ActionConsume is the permission to join a consumer group of a stream.
const ActionConsume = auth.ActionQueueConsume

// QueueOptions configure consumer groups. The zero value is usable.
type QueueOptions struct {
	// AckTimeout, MaxAttempts, BackoffMin, BackoffMax and DefaultPrefetch
	// are queue.Options (defaults 30s, 5, 1s, 60s, 64).
	AckTimeout      time.Duration
	MaxAttempts     int
	BackoffMin      time.Duration
	BackoffMax      time.Duration
	DefaultPrefetch int
	// MaxInFlightBytes bounds the payload bytes one consumer holds
	// unacked, whatever its prefetch (queue.Options.MaxInFlightBytes;
	// default 64 MiB, a larger record still goes alone to a consumer
	// holding nothing).
	MaxInFlightBytes int64
	// StateDir keeps the state of groups on durable streams (one log per
	// group; an ack is confirmed once its state satisfies StateSync).
	// Empty: group state is in memory and a restart redelivers everything
	// not yet acked. Whoever opens a durable stream's log calls
	// ReconcileGroupStates with it before declaring the stream.
	StateDir string
	// StateSync is the sync policy of group state logs when the stream's
	// log does not say its own (a disk log does: its policy is used, so
	// acks are as durable as the records they acknowledge). The zero value
	// is commitlog.SyncInterval.
	StateSync commitlog.SyncPolicy
	// DeadLetterSuffix names the dead-letter stream of a stream: records
	// that exhaust MaxAttempts are published to <stream><suffix> in the
	// same namespace, when that stream exists. Default ".dlq".
	DeadLetterSuffix string
	// TickInterval is how often ack timeouts and delayed redeliveries are
	// processed. Default 100ms.
	TickInterval time.Duration
	// MaxGroupsPerStream bounds the consumer groups of one stream (each
	// holds its state, on disk for a durable stream, until the stream is
	// deleted): joining, or asking the stats of, one more group fails.
	// Groups with state in StateDir count, opened yet or not, and always
	// open again, so a limit lowered across a restart refuses new groups
	// only. Default DefaultMaxGroupsPerStream.
	MaxGroupsPerStream int
}

// DefaultMaxGroupsPerStream is QueueOptions.MaxGroupsPerStream's default.
const DefaultMaxGroupsPerStream = 256

// ErrTooManyGroups refuses a consumer group beyond
// QueueOptions.MaxGroupsPerStream.
var ErrTooManyGroups = errors.New("too many consumer groups on this stream")

type groupKey struct {
	stream broker.StreamKey
	group  string
}

// queues owns the consumer groups of a server.
type queues struct {
	s         *Server
	mu        sync.Mutex
	groups    map[groupKey]*queue.Group
	perStream map[broker.StreamKey]int        // groups per stream
	state     map[groupKey]*commitlog.DiskLog // state logs we opened (the groups do not close them)
	ticking   map[*queue.Group]bool           // groups whose Tick runs (see tick)
	consumer  atomic.Uint64                   // assigned consumer names
	closed    bool
}

func newQueues(s *Server) *queues {
	return &queues{s: s, groups: map[groupKey]*queue.Group{}, perStream: map[broker.StreamKey]int{},
		state: map[groupKey]*commitlog.DiskLog{}, ticking: map[*queue.Group]bool{}}
}

// group returns the consumer group of st, creating (or, for durable
// streams, reloading) it on first use. A group it creates with no state
// starts at startAt (nil: the stream's oldest record).
func (q *queues) group(st *broker.Stream, name string, startAt *uint64) (*queue.Group, error) {
	if err := broker.ValidateName("group", name); err != nil {
		return nil, err
	}
	if st.Log() == nil {
		return nil, fmt.Errorf("queue groups need a log-backed stream; declare %s with --durable-stream", st.Key())
	}
	k := groupKey{st.Key(), name}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, broker.ErrClosed
	}
	if err := st.Err(); err != nil {
		// Deleted since the caller looked it up: ForgetStreams may already
		// have run, so a group made now would outlive the stream.
		return nil, err
	}
	if g := q.groups[k]; g != nil {
		return g, nil
	}
	o := q.s.opts.Queues
	stateDir := "" // the group's durable state, kept from an earlier run or made now
	if st.IsDurable() && o.StateDir != "" {
		stateDir = commitlog.DirFor(o.StateDir, k.stream.Tenant, k.stream.Namespace, k.stream.Stream, name)
	}
	if limit := cmp.Or(o.MaxGroupsPerStream, DefaultMaxGroupsPerStream); q.groupCount(k.stream, stateDir) >= limit && !exists(stateDir) {
		return nil, fmt.Errorf("%w (%d; --queue-max-groups)", ErrTooManyGroups, limit)
	}
	opts := queue.Options{
		AckTimeout: o.AckTimeout, MaxAttempts: o.MaxAttempts, BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax,
		DefaultPrefetch: o.DefaultPrefetch, MaxInFlightBytes: o.MaxInFlightBytes,
		DeadLetter: q.deadLetter(st.Key(), name), StartAt: startAt,
	}
	var stateLog *commitlog.DiskLog
	if stateDir != "" {
		var err error
		policy := o.StateSync
		if p, ok := st.Log().(interface{ SyncPolicy() commitlog.SyncPolicy }); ok {
			policy = p.SyncPolicy() // acks are as durable as the stream's own records
		}
		// The state log seals a full segment in the background: an ack that
		// fills it does not wait for its fsync (commitlog.Options.RollInBackground).
		stateLog, err = commitlog.Open(stateDir, commitlog.Options{Sync: policy, Logger: q.s.opts.Logger, RollInBackground: true})
		if err != nil {
			return nil, fmt.Errorf("open state of group %s on %s: %w", name, st.Key(), err)
		}
		opts.StateLog = stateLog
	}
	g, err := queue.NewGroup(name, st.Log(), opts)
	if err != nil {
		if stateLog != nil {
			stateLog.Close()
		}
		return nil, err
	}
	q.groups[k] = g
	q.perStream[k.stream]++
	if stateLog != nil {
		q.state[k] = stateLog
	}
	q.s.opts.Logger.Info("queue group opened", "stream", st.Key().String(), "group", name, "durable_state", stateLog != nil)
	return g, nil
}

// groupCount is how many groups stream k has: those open, or, when its
// groups keep state on disk (stateDir is one group's), those with state
// there, opened since the start or not yet. So a limit lowered across a
// restart still counts every group kept. Called with q.mu held.
func (q *queues) groupCount(k broker.StreamKey, stateDir string) int {
	n := q.perStream[k]
	if stateDir != "" {
		entries, _ := os.ReadDir(filepath.Dir(stateDir))
		n = max(n, len(entries))
	}
	return n
}

// exists reports whether path exists ("" does not).
func exists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// deadLetterLogEvery is how often at most a group logs the dead letters
// it dropped for want of a dead-letter stream.
const deadLetterLogEvery = 10 * time.Second

func (q *queues) deadLetter(k broker.StreamKey, group string) queue.DeadLetterFunc {
	suffix := q.s.opts.Queues.DeadLetterSuffix
	if suffix == "" {
		suffix = ".dlq"
	}
	// Drops are counted by the group (queue.Stats.DeadLettersDropped) and
	// logged per group: the first at once, then at most once every
	// deadLetterLogEvery, with the number since the last line.
	logs := rate.NewLimiter(rate.Every(deadLetterLogEvery), 1)
	var logMu sync.Mutex // unlogged, and its reset with a line
	var unlogged uint64
	return func(ctx context.Context, rec commitlog.Record, attempts int, reason string) error {
		// Looked up, never auto-created: dead letters go to the stream
		// when it exists (declared, or made by a client's use).
		dlq, err := q.s.opts.Broker.LookupStream(k.Tenant, k.Namespace, k.Stream+suffix)
		if err != nil {
			logMu.Lock()
			unlogged++
			if logs.Allow() {
				q.s.opts.Logger.Warn("dead letter dropped: no dead-letter stream", "stream", k.String(), "group", group,
					"offset", rec.Offset, "attempts", attempts, "reason", reason, "want_stream", k.Stream+suffix,
					"dropped", unlogged)
				unlogged = 0
			}
			logMu.Unlock()
			return fmt.Errorf("%w: no stream %s", queue.ErrDeadLetterDropped, k.Stream+suffix)
		}
		dl := wire.DeadLetter{Stream: k.Stream, Group: group, Offset: rec.Offset, Attempts: attempts,
			Reason: reason, Payload: rec.Payload}
		body, _ := json.Marshal(dl)
		// A dead letter its stream's subscribers could not take (an
		// event larger than the frame limit less its framing, the
		// publish refusal of eventTooLarge) goes without its payload too.
		if len(body) <= q.s.maxFrame()-wire.MaxEventOverhead {
			err = publishDeadLetter(ctx, dlq, body)
			if !errors.Is(err, commitlog.ErrTooLarge) {
				return err
			}
		}
		// The payload in base64 does not fit the dead-letter stream's
		// records or its subscribers' frames, and never will: retrying
		// would keep the record in the group for good. Send the dead
		// letter without it.
		q.s.opts.Logger.Warn("dead letter sent without its payload: too large for the dead-letter stream", "stream", k.String(),
			"group", group, "offset", rec.Offset, "payload_bytes", len(rec.Payload), "dead_letter_stream", k.Stream+suffix)
		dl.Payload = nil
		dl.Reason += fmt.Sprintf("; payload of %d bytes omitted: too large for the dead-letter stream", len(rec.Payload))
		body, _ = json.Marshal(dl)
		return publishDeadLetter(ctx, dlq, body)
	}
}

// publishDeadLetter publishes a dead letter. An error means it is not in
// the stream (the group keeps the record and tries again at its next
// tick), except when the stream says it stored it but could not hand it
// to every subscription (ctx ended while a subscriber under the block
// policy held up the publish): only that subscriber misses it, and trying
// again would write it twice.
func publishDeadLetter(ctx context.Context, dlq *broker.Stream, body []byte) error {
	if _, err := dlq.Publish(ctx, [][]byte{body}); err != nil && !errors.Is(err, broker.ErrStoredNotDelivered) {
		return err
	}
	return nil
}

func (q *queues) lookup(k groupKey) *queue.Group {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.groups[k]
}

// tick drives ack timeouts and delayed redeliveries until the server stops.
// Each group ticks in a goroutine of its own, one Tick at a time: a Tick
// can wait (a dead-letter publish to a stream whose subscriber under the
// block policy stopped reading, a slow fsync of its state), and that must
// hold up only its own group. A group whose last Tick still runs skips
// this one, and so does a group with nothing due (queue.Group.Due): idle
// groups cost a check per tick, not a goroutine.
func (q *queues) tick(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-q.s.ctx.Done():
			return
		case now := <-t.C:
			q.mu.Lock()
			for _, g := range q.groups {
				if q.ticking[g] || !g.Due(now) {
					continue // idle groups cost a check, not a goroutine
				}
				q.ticking[g] = true
				q.s.handlers.Add(1)
				go func() {
					defer q.s.handlers.Done()
					g.Tick(now)
					q.mu.Lock()
					delete(q.ticking, g)
					q.mu.Unlock()
				}()
			}
			q.mu.Unlock()
		}
	}
}

// forget closes the consumer groups of removed streams (their consumers'
// streams end) and deletes the groups' durable state, so a stream created
// again under the same name starts without groups. The lock is held
// throughout, as in remove: a group of a stream re-created meanwhile
// cannot open the old state, nor lose its own.
func (q *queues) forget(keys []broker.StreamKey) {
	gone := make(map[broker.StreamKey]bool, len(keys))
	for _, k := range keys {
		gone[k] = true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, g := range q.groups {
		if !gone[k.stream] {
			continue
		}
		err := g.Close()
		if sl := q.state[k]; sl != nil {
			err = errors.Join(err, sl.Close())
		}
		if err != nil {
			q.s.opts.Logger.Error("closing a deleted stream's queue group", "stream", k.stream.String(), "group", k.group, "err", err)
		}
		delete(q.groups, k)
		delete(q.state, k)
		delete(q.perStream, k.stream)
	}
	if dir := q.s.opts.Queues.StateDir; dir != "" {
		for k := range gone {
			if err := os.RemoveAll(commitlog.DirFor(dir, k.Tenant, k.Namespace, k.Stream)); err != nil {
				q.s.opts.Logger.Error("removing a deleted stream's queue group state", "stream", k.String(), "err", err)
			}
		}
	}
}

// remove deletes the consumer group name of st: its consumers get
// "queue group closed: group deleted", its durable state is removed, and
// the name then starts an empty group, at the stream's oldest record. It
// reports whether there was a group, open or only on disk. The lock is
// held throughout, so a join of the same name cannot open the state being
// removed.
func (q *queues) remove(st *broker.Stream, name string) (bool, error) {
	if err := broker.ValidateName("group", name); err != nil {
		return false, err
	}
	k := groupKey{st.Key(), name}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, broker.ErrClosed
	}
	g, sl := q.groups[k], q.state[k]
	found := g != nil
	if g != nil {
		delete(q.groups, k)
		delete(q.state, k)
		q.perStream[k.stream]--
		if err := g.Close(); err != nil {
			q.s.opts.Logger.Error("closing a deleted queue group", "stream", k.stream.String(), "group", name, "err", err)
		}
		if sl != nil {
			if err := sl.Close(); err != nil {
				q.s.opts.Logger.Error("closing a deleted queue group's state", "stream", k.stream.String(), "group", name, "err", err)
			}
		}
	}
	if dir := q.s.opts.Queues.StateDir; dir != "" {
		gdir := commitlog.DirFor(dir, k.stream.Tenant, k.stream.Namespace, k.stream.Stream, name)
		if _, err := os.Stat(gdir); err == nil {
			found = true
		}
		if err := os.RemoveAll(gdir); err != nil {
			return found, fmt.Errorf("remove state of group %s on %s: %w", name, k.stream, err)
		}
	}
	if found {
		q.s.opts.Logger.Info("queue group deleted", "stream", k.stream.String(), "group", name)
	}
	return found, nil
}

// existing returns st's group name if it exists: open in this server, or
// with durable state on disk from an earlier run (it is opened then). ok
// false: there is no such group, and none is created. Once the broker is
// shutting down (its groups closed) it returns broker.ErrClosed.
func (q *queues) existing(st *broker.Stream, name string) (g *queue.Group, ok bool, err error) {
	if err := broker.ValidateName("group", name); err != nil {
		return nil, false, err
	}
	k := groupKey{st.Key(), name}
	q.mu.Lock()
	g, closed := q.groups[k], q.closed
	q.mu.Unlock()
	switch {
	case closed:
		// The broker is shutting down and closed its groups: not a
		// group that does not exist.
		return nil, false, broker.ErrClosed
	case g != nil:
		return g, true, nil
	}
	dir := q.s.opts.Queues.StateDir
	if dir == "" {
		return nil, false, nil
	}
	if !exists(commitlog.DirFor(dir, k.stream.Tenant, k.stream.Namespace, k.stream.Stream, name)) {
		return nil, false, nil
	}
	g, err = q.group(st, name, nil) // it has state: a start would not apply
	return g, err == nil, err
}

// removed reports whether g, the group of k, was deleted by remove.
func (q *queues) removed(k groupKey, g *queue.Group) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.closed && q.groups[k] != g
}

func (q *queues) close() {
	q.mu.Lock()
	q.closed = true
	gs, logs := q.groups, q.state
	q.groups, q.state = map[groupKey]*queue.Group{}, map[groupKey]*commitlog.DiskLog{}
	q.mu.Unlock()
	for k, g := range gs {
		err := g.Close()
		if sl := logs[k]; sl != nil {
			err = errors.Join(err, sl.Close())
		}
		if err != nil {
			q.s.opts.Logger.Error("closing queue group", "stream", k.stream.String(), "group", k.group, "err", err)
		}
	}
}

// lockedWriter serializes frames from the delivery and reply goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *wire.Writer
}

func (l *lockedWriter) message(m wire.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.WriteMessage(m)
}

func (l *lockedWriter) raw(b []byte) error { return l.rawThen(b, nil) }

// rawThen writes b and then, if not nil, runs after (whether or not the
// write failed) before another frame can be written.
func (l *lockedWriter) rawThen(b []byte, after func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.w.WriteRaw(b)
	if after != nil {
		after()
	}
	return err
}

// wait returns once no write (and what runs after it) is in progress.
func (l *lockedWriter) wait() {
	l.mu.Lock()
	l.mu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
}

// queueJoin turns this control stream into a consumer: deliveries flow
// out as FlagQueueDelivery frames while acks and nacks flow in. The
// consumer leaves the group (its in-flight records go back for
// redelivery) when the stream or connection ends.
func (ctl *control) queueJoin(m *wire.QueueJoin) error {
	c := ctl.c
	if ctl.peer&wire.CapQueue == 0 {
		return errNotNegotiated(m.Type())
	}
	// A subscribe's order: tenant, permission, the tenant's limit, then
	// the stream and the group. So a join the limit refuses leaves nothing
	// behind: no group (no state on disk, no place under
	// MaxGroupsPerStream), no auto-created stream.
	if ctl.otherTenant(m.TenantID) {
		return ctl.fail("tenant mismatch")
	}
	if !ctl.authorize(ActionConsume, StreamResource(m.TenantID, m.Namespace, m.Stream)) {
		return ctl.fail("forbidden")
	}
	if err := c.s.tenants.acquireSub(ctl.id.use); err != nil {
		return ctl.fail(err.Error())
	}
	defer c.s.tenants.releaseSub(ctl.id.use)
	st, err := c.s.opts.Broker.Stream(m.TenantID, m.Namespace, m.Stream)
	if err != nil {
		return ctl.fail(err.Error())
	}
	startAt, err := ctl.groupStart(st, m.Start)
	if err != nil {
		return ctl.fail(err.Error())
	}
	g, err := c.s.queues.group(st, m.Group, startAt)
	if err != nil {
		return ctl.fail(err.Error())
	}
	prefetch := 0
	if m.Prefetch != nil {
		prefetch = int(min(*m.Prefetch, 1<<20))
	}
	var member *queue.Member
	var name string
	for {
		if m.Consumer != nil && *m.Consumer != "" {
			name = *m.Consumer
			member, err = g.Join(name, prefetch)
		} else {
			// A name we assign may have been chosen by another consumer:
			// take the next number then.
			name = "consumer-" + strconv.FormatUint(c.s.queues.consumer.Add(1), 10)
			if member, err = g.Join(name, prefetch); errors.Is(err, queue.ErrMemberExists) {
				continue
			}
		}
		// Deleted (queue_delete) since it was looked up: join the group
		// that takes the name afresh, as if the delete came first.
		if errors.Is(err, queue.ErrClosed) && c.s.queues.removed(groupKey{st.Key(), m.Group}, g) {
			if g, err = c.s.queues.group(st, m.Group, startAt); err != nil {
				return ctl.fail(err.Error())
			}
			continue
		}
		break
	}
	if err != nil {
		return ctl.fail(err.Error())
	}
	defer member.Leave()
	if prefetch == 0 {
		prefetch = c.s.opts.Queues.DefaultPrefetch
		if prefetch <= 0 {
			prefetch = 64
		}
	}
	if err := ctl.flush(); err != nil { // replies queued before the join go first
		return err
	}
	w := &lockedWriter{w: ctl.w}
	maxFrame := c.s.maxFrame()
	if err := w.message(&wire.QueueJoined{Group: m.Group, Consumer: name, Prefetch: uint64(prefetch)}); err != nil {
		return err
	}
	// A consumer session is not a request in progress: do not hold up a
	// drain for its lifetime.
	c.s.busy.Add(-1)
	defer c.s.busy.Add(1)
	ctx, cancel := context.WithCancel(ctl.ctx)
	defer cancel()
	writerDone := make(chan struct{})
	var groupEnded atomic.Bool
	go func() {
		defer close(writerDone)
		defer cancel()
		var buf []byte
		var ds []wire.QueueDelivery
		for {
			got, err := member.Next(ctx, prefetch)
			if err != nil && ctx.Err() == nil && !errors.Is(err, queue.ErrMemberLeft) {
				// The group closed under the consumer (its stream was
				// deleted, or the broker is closing), or its stream failed
				// (a deleted stream's log may close before its group
				// does): say so, then stop reading so the stream ends
				// cleanly after the message. (Stopping silently would
				// leave the consumer waiting for deliveries forever.)
				msg := "queue group closed"
				serr := st.Err()
				if c.s.draining.Load() || errors.Is(serr, broker.ErrClosed) {
					// One text whichever of the drain's steps (the
					// groups closed, then the engine) came first.
					msg += ": broker shutting down"
				} else if serr != nil {
					msg += ": " + serr.Error()
				} else if errors.Is(err, queue.ErrClosed) && c.s.queues.removed(groupKey{st.Key(), m.Group}, g) {
					msg += ": group deleted"
				} else if !errors.Is(err, queue.ErrClosed) {
					msg += ": " + err.Error()
				}
				groupEnded.Store(true)
				_ = w.message(&wire.QueueError{Message: msg})
				ctl.bs.CancelRead(codeNoErrorStream)
				return
			}
			if err != nil {
				return
			}
			ds = ds[:0]
			for _, d := range got {
				ds = append(ds, wire.QueueDelivery{Offset: d.Offset, Attempt: uint16(min(d.Attempt, 1<<16-1)), Payload: d.Payload})
			}
			clear(got)
			// A batch may exceed one frame (prefetch counts records, and
			// MaxInFlightBytes, 64 MiB by default, is above the frame
			// limit): it goes out in
			// frames within the frame limit (the client reads with it),
			// one at a time, so no buffer holds more than one frame.
			for rest := ds; len(rest) > 0; {
				n := wire.QueueDeliveriesInFrame(rest, maxFrame)
				buf = wire.AppendQueueDeliveryFrame(buf[:0], rest[:n])
				clear(rest[:n]) // let the written payloads go
				rest = rest[n:]
				if w.raw(buf) != nil {
					return
				}
			}
		}
	}()
	err = ctl.consumeLoop(member, w)
	cancel()
	<-writerDone
	if groupEnded.Load() {
		return errClose // finish the stream after the queue_error
	}
	return err
}

// consumeLoop reads acks and nacks until the consumer goes away.
func (ctl *control) consumeLoop(member *queue.Member, w *lockedWriter) error {
	// An ack or nack read before the token's expiry is settled under the
	// connection's context, not the stream's, which ends at the expiry: under
	// SyncAlways its state record may still wait for the fsync then, and
	// a context error would report an ack that holds as failed. Frames
	// read at or after the expiry are refused below.
	settle := ctl.c.qc.Context()
	for {
		f, err := ctl.r.ReadFrame()
		if err != nil {
			return err // io.EOF: the consumer finished its side and leaves
		}
		if ctl.expired() {
			// Read as the token expired, before its timer stopped the
			// read: record nothing more with the token's rights, as
			// control streams (run). The ack is not recorded and its
			// request fails with the expiry; the delivery comes again.
			return errTokenExpired
		}
		if f.Flags != 0 {
			return &wire.DecodeError{What: "queue stream", Err: wire.ErrWrongFlags, Detail: fmt.Sprintf("flags %#04x", f.Flags)}
		}
		msg, err := wire.DecodeMessage(f.Payload)
		if err != nil {
			return err
		}
		var reqID *uint64
		switch m := msg.(type) {
		case *wire.QueueAck:
			reqID = m.RequestID
			err = member.Ack(settle, m.Offsets...)
		case *wire.QueueLeave:
			member.LeaveSeen(m.Offsets...) // the consumer finishes the stream next
			continue
		case *wire.QueueNack:
			reqID = m.RequestID
			delay := time.Duration(0)
			if m.DelayMs != nil {
				delay = time.Duration(min(*m.DelayMs, uint64(maxTTL/time.Millisecond))) * time.Millisecond
			}
			err = member.Nack(settle, m.Offset, delay)
		default:
			return ctl.unexpected(msg)
		}
		if err != nil {
			code := "internal"
			var nif *queue.NotInFlightError
			var we *commitlog.WriteError
			switch {
			case errors.As(err, &nif):
				code = "not_in_flight"
			case errors.As(err, &we):
				code = wire.QueueCodeStorage // a full disk: the ack holds, not durably
			}
			if reqID == nil {
				// Not asked for an answer. A queue_error without a
				// request_id would tell the consumer its group closed.
				ctl.c.s.opts.Logger.Debug("queue ack/nack without request_id failed", "code", code, "err", err)
				continue
			}
			if werr := w.message(&wire.QueueError{RequestID: reqID, Code: code, Message: err.Error()}); werr != nil {
				return werr
			}
			continue
		}
		if reqID != nil {
			if err := w.message(&wire.QueueOK{RequestID: *reqID}); err != nil {
				return err
			}
		}
	}
}

// queueStats answers a group's counters. It needs the permission to
// consume from the stream, as joining does. A group with durable state
// not opened yet since the broker started is opened; a group that does
// not exist is answered not_found and not created (a typo in a monitoring
// script must not leave a group behind, holding a place under
// --queue-max-groups).
func (ctl *control) queueStats(m *wire.QueueStats) error {
	if ctl.peer&wire.CapQueue == 0 {
		return errNotNegotiated(m.Type())
	}
	if ctl.otherTenant(m.TenantID) {
		return ctl.fail("tenant mismatch")
	}
	if !ctl.authorize(ActionConsume, StreamResource(m.TenantID, m.Namespace, m.Stream)) {
		return ctl.reply(&wire.QueueError{RequestID: &m.RequestID, Code: "forbidden", Message: "forbidden"})
	}
	// Looked up, never auto-created: a question about a stream's groups
	// (a typo in a monitoring script) leaves no stream behind.
	st, err := ctl.c.s.opts.Broker.LookupStream(m.TenantID, m.Namespace, m.Stream)
	if err != nil {
		return ctl.reply(&wire.QueueError{RequestID: &m.RequestID, Code: queueCode(err), Message: err.Error()})
	}
	g, ok, err := ctl.c.s.queues.existing(st, m.Group)
	switch {
	case err != nil:
		return ctl.reply(&wire.QueueError{RequestID: &m.RequestID, Code: queueCode(err), Message: err.Error()})
	case !ok:
		return ctl.reply(noGroup(m.RequestID, m.Group, st))
	}
	s := g.Stats()
	return ctl.reply(&wire.QueueStatsValue{RequestID: m.RequestID, Members: uint64(s.Members), InFlight: uint64(s.InFlight),
		Pending: uint64(s.Pending), Lag: s.Lag, Cursor: s.Cursor, Delivered: s.Delivered, Acked: s.Acked, Nacked: s.Nacked,
		Redelivered: s.Redelivered, TimedOut: s.TimedOut, DeadLettered: s.DeadLettered,
		Released: wire.U64(s.Released), Lost: wire.U64(s.Lost)})
}

// queueDelete deletes a consumer group (queues.remove). It needs the
// permission to manage the stream: the group's state is everyone's.
func (ctl *control) queueDelete(m *wire.QueueDelete) error {
	if ctl.peer&wire.CapQueue == 0 {
		return errNotNegotiated(m.Type())
	}
	if ctl.otherTenant(m.TenantID) {
		return ctl.fail("tenant mismatch")
	}
	if !ctl.authorize(auth.ActionStreamManage, StreamResource(m.TenantID, m.Namespace, m.Stream)) {
		return ctl.reply(&wire.QueueError{RequestID: &m.RequestID, Code: "forbidden", Message: "forbidden"})
	}
	// Looked up, never auto-created: a question about a stream's groups
	// (a typo in a monitoring script) leaves no stream behind.
	st, err := ctl.c.s.opts.Broker.LookupStream(m.TenantID, m.Namespace, m.Stream)
	if err != nil {
		return ctl.reply(&wire.QueueError{RequestID: &m.RequestID, Code: queueCode(err), Message: err.Error()})
	}
	found, err := ctl.c.s.queues.remove(st, m.Group)
	switch {
	case err != nil:
		return ctl.reply(&wire.QueueError{RequestID: &m.RequestID, Code: queueCode(err), Message: err.Error()})
	case !found:
		return ctl.reply(noGroup(m.RequestID, m.Group, st))
	}
	return ctl.reply(&wire.QueueOK{RequestID: m.RequestID})
}

// queueCode is the queue_error code of a queue_stats or queue_delete that
// failed with err: "unavailable" while the broker shuts down (its groups
// are closed, not gone: asked again after the restart, the group is
// there), as a purge's; "invalid" otherwise (an unknown stream, a bad
// name).
func queueCode(err error) string {
	if errors.Is(err, broker.ErrClosed) {
		return wire.StreamCodeUnavailable
	}
	return "invalid"
}

// noGroup answers a request about a consumer group that does not exist.
func noGroup(reqID uint64, group string, st *broker.Stream) *wire.QueueError {
	return &wire.QueueError{RequestID: &reqID, Code: "not_found", Message: fmt.Sprintf("no consumer group %q on %s", group, st.Key())}
}

// GroupStats returns the counters of a consumer group opened since the
// server started (ok false otherwise).
func (s *Server) GroupStats(tenant, ns, stream, group string) (queue.Stats, bool) {
	st, err := s.opts.Broker.LookupStream(tenant, ns, stream) // never created by a question
	if err != nil {
		return queue.Stats{}, false
	}
	g := s.queues.lookup(groupKey{st.Key(), group})
	if g == nil {
		return queue.Stats{}, false
	}
	return g.Stats(), true
}
