// Package queue implements consumer groups (work queues) over a stream's
// commit log, like RabbitMQ queues or NATS JetStream work-queue
// consumers. It is transport-free: the server binds a Group to its
// protocol; tests drive it directly with a fake Clock.
//
// # Semantics
//
// A Group shares the records of one stream (a commitlog.Log) among its
// members. Each record is delivered to one member at a time and is done
// when that member acks it; done records are never delivered again.
//
//   - Order. Member.Next hands out ready redeliveries first, then new
//     records in offset order. A new group starts at the stream's
//     Oldest().
//   - Prefetch. A member holds at most its prefetch in flight, and at most
//     Options.MaxInFlightBytes of payload (default 64 MiB; a single larger
//     record goes to a member holding nothing). Next blocks while either
//     is full (the byte bound's stops counted in
//     Stats.InFlightBytesLimited), and leaves the work to other members.
//   - Attempts. Each delivery of a record is one attempt (Delivery.Attempt
//     counts from 1). A delivery ends with an ack (the record is done), a
//     nack (redelivered after the nack's delay), an ack timeout (Tick
//     takes it back after Options.AckTimeout; it is redelivered after a
//     backoff of BackoffMin doubling per attempt up to BackoffMax), or its
//     member leaving (redelivered at once). Redelivery goes to any member.
//     A member that leaves with Member.LeaveSeen names the deliveries its
//     application took; the others' deliveries are not counted
//     (Stats.Released), since nobody saw them. Nor are those of a Next
//     that returns ErrMemberLeft or ErrClosed after it had taken some
//     (the member left, or the group closed, while it read the stream).
//     A delivery that an ack timeout takes back while the Next that took
//     it reads the stream is not returned by that Next (it may already
//     be another member's, or dead-lettered).
//   - Dead letters. A record whose delivery number MaxAttempts ended
//     without an ack is not delivered again: Options.DeadLetter is called
//     with it, attempts = MaxAttempts and a reason such as "max attempts
//     (5) exceeded: ack timeout" (or "nacked", "member left", "pending at
//     restart"). When it returns nil the record is done, like an acked
//     one (Stats.DeadLettered, not Stats.Acked); when it fails the record
//     waits and the call is retried by a later Tick (after 1 s, doubling
//     to 30 s, while every call of a round fails), unless the error is
//     ErrDeadLetterDropped (nowhere to keep it): the record is done and
//     the drop counted (Stats.DeadLettersDropped), as without a
//     DeadLetter func. Nack calls
//     DeadLetter itself; Tick does it for timeouts, Leave and restarts.
//     Close waits for a dead-lettering in progress (cancelling the
//     context of its DeadLetter calls) and writes its state after the
//     record of the dead letters accepted; only a crash between a
//     DeadLetter call's success and the durability of that record makes
//     the record dead-lettered again after the restart. A DeadLetter call
//     that ignores its context is waited for at most
//     Options.CloseDeadLetterWait (default 5s): Close then leaves its
//     record pending (Stats.DeadLettersAbandoned), to be dead-lettered
//     again after the restart, and the call changes nothing when it
//     returns.
//   - Acks are strict. Acking or nacking an offset not in flight for the
//     member — including a second ack of the same offset, or an ack after
//     the ack timeout took the delivery back — is a *NotInFlightError; a
//     late ack does not cancel the redelivery.
//   - Time. Deadlines and delays use Options.Clock. Nothing runs in the
//     background: timeouts and delayed redeliveries happen when the owner
//     calls Tick (a ticker in the server, a fake time in tests); Next
//     also makes due delayed redeliveries ready when it runs.
//   - Wake-ups. A blocked Next wakes for new stream records, for
//     redeliveries made ready (Nack without delay, Leave, Tick) and for
//     room in its prefetch (an ack, nack or timeout of its own
//     deliveries). Work wakes one idle member, not all: one idle member
//     waits on the stream, the others queue, and each Next that leaves
//     work behind wakes the next. Ack, Nack and Leave may run
//     concurrently with Next from other goroutines; Next runs once at a
//     time per member.
//   - Memory. The group reads the stream lazily, Options.ReadBatch
//     records at a time, and reads again only when that buffer is empty.
//     Beyond the buffer it holds the records in flight (at most
//     MaxInFlightBytes of payload per member: a payload read from a disk
//     stream is copied out of the read's shared buffer, which a record
//     left in flight would otherwise keep alive, uncounted) and the ones
//     waiting for redelivery (one entry each) and, per member blocked in
//     Next, one waiter. A record waiting out a delay (a nack's, a timeout's
//     backoff), or pending at a restart, holds no payload: Next reads it
//     again from the stream when it redelivers it (Stats.Unloaded,
//     Stats.Reloaded; no more payload than the member may take beside
//     what it holds, MaxInFlightBytes), so nacks with long delays cost no
//     payload memory. Ready ones given back at once (a nack without
//     delay, a member leaving) and ones waiting for their dead letter
//     keep theirs (Stats.PendingBytes). A stream record dropped by
//     the stream (retention, a purge) before it was delivered is skipped
//     and counted in Stats.Lost; so is one dropped after the group read it
//     ahead, or while it waits for a redelivery or its dead letter: the
//     group never hands out a record the stream no longer holds (a member
//     may still ack one it holds in flight).
//   - Lag. Stats.Lag is the number of stream records not done: in flight,
//     waiting for redelivery, buffered, and not yet read (of those, only
//     the ones the stream still holds).
//   - Attempt counts saturate at math.MaxInt32 (the largest the state
//     log holds), so a record redelivered forever (MaxAttempts < 0) keeps
//     a group whose state can be read back.
//
// # Durable state
//
// With Options.StateLog the group's state survives restarts. What is
// written, as one state-log record per operation (Ack call, Tick, Close,
// dead-letter batch):
//
//   - acks and dead letters (the offsets done above the floor),
//   - the attempt count of each delivery. Deliveries are not written by
//     Next (that would put an fsync on the delivery path); their counts
//     ride along with the next record written, and Tick and Close write
//     the ones still unwritten. A crash therefore forgets the attempt
//     counts of deliveries made since the last Ack or Tick: those records
//     come back with their earlier count (at-least-once; MaxAttempts may
//     allow that many extra deliveries). Ack waits for its record (and so
//     for the counts it carries) to be durable per the state log's sync
//     policy; under commitlog.SyncAlways concurrent acks share fsyncs.
//   - every Options.SnapshotEvery records, a snapshot of the whole state.
//
// NewGroup with a non-empty state log rebuilds the group: done records
// stay done; every record delivered and not done (in flight at the crash,
// or pending) is read back from the stream and made ready for
// redelivery with its attempt count (at-least-once); the group continues
// with new records after the last one delivered. State beyond the
// stream's end (a stream that lost its unsynced tail, or restored from an
// older copy) is dropped, and so are pending records the stream no longer
// has (counted as lost); when anything is dropped NewGroup writes a
// snapshot at once, so that acks of lost records never apply to the new
// records that take their offsets. NewGroup can only do so for records
// appended after it runs: an owner that opens groups lazily calls
// ClampState on every group's state log when it opens the stream's log,
// before appending to it, which drops the same state without opening the
// group.
//
// Restart cost is bounded: each ops record carries the state-log offset
// of the latest snapshot, so NewGroup reads the last record, then
// replays from that snapshot to the end — about SnapshotEvery records,
// whatever the log's length. Memory during the replay is the snapshot's
// pending set plus the offsets acked since. The state log is never
// truncated by the group: it grows by one small record per Ack call.
// Rotating it (writing a snapshot into a fresh log) is left to the
// owner; retention must never be applied to it.
//
// # State log format
//
// Each state-log record's payload is one state record; integers are
// unsigned LEB128 varints (encoding/binary Uvarint) unless marked zigzag
// (binary.Varint), always in their shortest form (decoding refuses
// overlong ones, so a state has one encoding). Byte 0 is the type, byte 1
// the format version (1).
//
//	snapshot (type 1):
//	  uvarint len(name), the group name
//	  uvarint floor              every offset below is done
//	  uvarint cursor-floor       no offset from cursor on was ever delivered
//	  uvarint n                  offsets in [floor, cursor) not done; all others are
//	  n × { uvarint delta, uvarint attempts }
//	       offsets ascending; delta from floor for the first, from the
//	       previous offset after (so ≥ 1)
//
//	ops (type 2):
//	  uvarint ref                state-log offset of the latest snapshot when written
//	  then ops to the end of the payload:
//	    byte op                  1 ack, 2 dead-lettered, 3 delivered
//	    zigzag varint delta      offset minus the previous op's offset (the first: minus 0)
//	    uvarint attempts         op 3 only: the delivery's attempt number (≥ 1)
//
// For example a snapshot of group "g" with floor 5, cursor 9 and offset 7
// pending after 2 attempts is 01 01 01 67 05 04 01 02 02; ops acking 7
// and 8 then delivering 9 for the first time, written while the snapshot
// was at state-log offset 0, are 02 01 00 01 0e 01 02 03 02 01.
//
// Replay starts at the snapshot and applies the ops records after it. An
// offset done (ack or dead) stays done and attempt counts only grow, so
// a repeated ops record changes nothing. Every record is queued under the
// group's lock, in the critical section that decided its content, and
// appended (written to the OS) in queue order after the lock is released
// (records queued meanwhile share the write call), then its durability
// is awaited (concurrent Acks share the fsync): records lie in the log in
// the order their changes took effect, so every ops record before a
// snapshot is contained in it, and none after it holds a count the
// snapshot lowered (Member.LeaveSeen). A slow append (one that rolls the
// state log's segment fsyncs the full one first) holds up the state
// writes queued behind it (Ack, Tick, Close), not the group's other work
// (Next, Nack, Join, Leave, Stats). An offset beyond the
// snapshot's cursor that appears in an op was delivered, and so were all
// below it (deliveries are in offset order): after the replay, each such
// offset not acked or dead is pending, with 0 attempts if its delivery
// count was not written. Records the group skips because the stream no
// longer holds them (retention, a purge) were not delivered: after such a
// skip the group writes a snapshot (its cursor past them) in place of its
// next ops record, or at the next Tick or Close, so no op lies beyond
// them with only an older snapshot before it.
package queue
