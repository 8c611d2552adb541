// Package commitlog is the append-only log under Felix streams: an ordered
// sequence of records with contiguous offsets from 0. Log is the interface;
// Memory is a bounded in-memory ring; DiskLog is the durable, segmented log
// described here. Verify and Dump read a log directory without changing it
// (they back `felix log verify` and `felix log dump`).
//
// # Directory layout
//
// A log is one directory holding, per segment,
//
//	00000000000000000000.log     records with offsets from 0
//	00000000000000000000.index   its sparse index (sealed segments only)
//	00000000000000004711.log     the next segment: its first offset is 4711
//
// plus a LOCK file, held with flock(2) by the DiskLog that has the
// directory open, so a second Open (in any process) fails, and at times a
// file segment.next: the next segment, prepared ahead of a roll (see
// Writing), not part of the log. Names are the segment's base offset (the
// offset of its first record) as 20 zero-padded decimal digits. The
// segment with the highest base is the active one, the only one written
// to; the others are sealed and immutable. Other files are ignored.
//
// # Segment file
//
// All integers are big-endian. A segment starts with a 32-byte header:
//
//	bytes  0..4   magic 0x46584C47 ("FXLG")
//	bytes  4..6   u16 format version = 1
//	bytes  6..8   u16 flags = 0
//	bytes  8..16  u64 base offset (must equal the file name)
//	bytes 16..24  i64 creation time, unix microseconds
//	bytes 24..28  u32 CRC-32C (Castagnoli) of bytes 0..24
//	bytes 28..32  u32 reserved = 0
//
// followed by records, back to back, to the end of the file:
//
//	bytes  0..4   u32 payload length n (at most MaxRecordLimit, 1 GiB)
//	bytes  4..12  u64 offset
//	bytes 12..20  i64 timestamp, unix microseconds
//	bytes 20..24  u32 CRC-32C of bytes 0..20, then of the payload
//	bytes 24..24+n payload
//
// A record takes 24+n bytes. Offsets increase by one from the base, with no
// gap within a segment or across segments: a segment's base is the previous
// segment's last offset + 1. Golden vectors (hex):
//
//	record offset 7, timestamp 9, payload "hi":
//	  00000002 0000000000000007 0000000000000009 3667C7E5 6869
//	segment header base 7, created 9:
//	  46584C47 0001 0000 0000000000000007 0000000000000009 4C8F38BB 00000000
//
// # Index file
//
// A 24-byte header, then 16-byte entries:
//
//	header:  magic 0x46584958 ("FXIX"), u16 version = 1, u16 flags = 0,
//	         u64 base offset, u32 CRC-32C of header bytes 0..16, u32 reserved = 0
//	entry:   u64 record offset, u64 byte position of that record in the segment
//
// The first entry is the segment's first record (position 32); after it an
// entry is added for the first record that starts at least
// Options.IndexSpacingBytes after the previous entry. Index files are
// written (not fsynced) when a segment is sealed, by the append that
// sealed it once it has released the write lock; the active segment's
// index is kept in memory and rebuilt by scanning on Open. An index is an
// accelerator, never the truth: Open checks its structure and the records
// after its last entry and rebuilds it from the segment on any doubt; a
// read whose index entry does not lead to the expected record scans the
// segment from its start instead. Memory use is 16 bytes per entry (about
// 0.4% of the log at the default spacing).
//
// # Writing
//
// Append encodes a batch into one buffer and writes it with one write call
// at the end of the active segment. A batch is never split across
// segments: if it would take the active segment past Options.SegmentBytes
// (and the segment already holds records) the segment is sealed first —
// fsynced, index file written — and a new one started (header fsynced,
// directory fsynced, before any record is written to it). A batch larger
// than a segment gets a segment of its own.
//
// The new segment is prepared ahead: once the active segment is half
// full, a background goroutine creates segment.next, 32 zero bytes,
// fsynced with the directory. The roll writes the header into it, links
// it under the segment's name (a link never replaces a file), removes the
// name segment.next, and fsyncs the file and the directory concurrently:
// about half the cost of creating the file there, under the write lock
// every appender waits for. Without a spare ready (none asked yet, still
// being made, or its making failed: a full disk, no descriptors left), or
// if using it fails, the roll creates the segment file itself, as before
// (it too fsyncs the file and the directory concurrently). A log has at
// most one spare, asked for at most once per segment, kept closed until
// the roll opens it (no descriptor held between rolls); Close waits for
// one being made and removes it, Open removes one left by a crash.
//
// Readers see a record only once the write holding it has completed. If a
// write fails (a full disk, a file over the size limit) the partial
// batch is truncated away (and the cut fsynced) and the append returns a
// *WriteError: nothing of it is stored, and the next append is tried as
// usual (so appends succeed again once the disk has room). A roll that
// cannot create its new segment is a WriteError too, even when it is the
// new file's or the directory's fsync that failed: that file is removed,
// the removal fsynced with the directory (its name may have reached the
// disk: back after a power failure, it would overlap the records written
// next), and the old segment stays active; while that directory fsync
// fails, appends are WriteErrors too, nothing of them written. If the
// cut, or an fsync of written records, fails, the log refuses all further
// writes (an fsync error leaves the file's contents unknown). The fsyncs
// of records take turns, each settling its outcome before the next
// starts: the kernel reports a
// writeback error to one fsync only, and a later one must not pass for
// success. The append that will seal the segment
// fsyncs it first without the write lock, so appends that still fit go on
// and the seal has little left to flush. With Options.RollInBackground the
// append that would pass SegmentBytes is written into the segment anyway
// and a goroutine seals it (fsync without the lock, then the roll), so no
// append waits for that fsync; appends go on into the segment meanwhile,
// up to twice SegmentBytes, where an append rolls itself as without it.
//
// Concurrent AppendNoWait calls share write calls (group write): the calls
// that arrive while the log is writing form a group, whose first call
// writes every record of the group with one write call once the log is
// free, and hands the outcome to the others. Each call's records are
// consecutive; each returns once they are written; a failed write fails
// every call of its group and stores none of their records. Stats.Writes
// counts write calls, Options.OnWrite observes them.
//
// # Durability
//
// Options.Sync chooses when records reach stable storage:
//
//   - SyncAlways: Append returns after an fsync covering its records. A
//     dedicated goroutine fsyncs everything written so far and wakes every
//     append that fsync covered, so concurrent appends share fsyncs (group
//     commit). Nothing acknowledged is lost.
//   - SyncInterval (default, 100ms): Append returns once written to the OS;
//     a background fsync runs one interval after an append, covering
//     every append of that interval (an idle log does no periodic work).
//     A process crash loses nothing; a machine crash loses at most the
//     records of the last interval.
//   - SyncNever: the OS writes back when it likes; segment seals and Close
//     still fsync.
//
// # Recovery
//
// Open lists the segments, sorted by base, and checks:
//
//   - bases follow each other with no gap or overlap;
//   - sealed segments have a valid header, an index that checks out and
//     valid records after its last entry (every record with
//     Options.VerifyOnOpen). A sealed segment is never truncated: a bad
//     record in it is corruption;
//   - the active segment is validated record by record (length, checksum,
//     offset). Its tail may be torn by a crash mid-write. The rule: at the
//     first record that is incomplete, or whose length is impossible or
//     checksum wrong, the rest of the segment is searched for any valid
//     record. If there is none, the tail is torn: it is truncated to the
//     last valid record, with a warning naming the file, position and bytes
//     dropped. So a bit flipped in the last record makes that record
//     disappear, like a torn write would. If a valid record follows, the
//     damage is in the middle and Open refuses (unless Options.RepairTail),
//     except where the bytes from the bad record to the valid one show a
//     write that never reached the disk: zeros from a position to the end
//     of its 512-byte sector, at least a record header of them, starting
//     at the bad record or at a sector boundary (a sector the write did
//     not reach holds what the last fsync left: zeros past the durable
//     end). The page cache and the drive write a batch back in any order,
//     so an unacknowledged batch can be torn with later bytes on disk; but
//     nothing after a write that was never fsynced was fsynced either (an
//     fsync covers all that was written before it), so under SyncAlways
//     none of it was acknowledged: it is a torn tail, truncated with the
//     same warning. A bit flipped, or bytes changed but not zeroed, is
//     corruption still. (A payload holding a zeroed sector, damaged
//     elsewhere, or a sector a disk lost after reporting it fsynced, would
//     pass for torn: disks failing their contract.)
//     A checksum-valid record with the wrong offset is always corruption;
//   - an active segment with no valid header and no records (a roll cut
//     short) gets a fresh header; index files without a segment, and a
//     spare segment.next, are deleted. An active segment with no records
//     may be a roll cut short before its directory fsync: Open fsyncs the
//     directory then, before any record is written into it, as a roll
//     does (Open fsyncs the directory in any case: see Retention). Open
//     also fsyncs the parent of every directory it creates.
//
// Everything Open refuses is a *CorruptionError naming the file and byte
// position; nothing is silently skipped. Open is idempotent: opening a
// recovered log again changes nothing.
//
// # Finding a time
//
// OffsetForTime finds the first record stamped at or after a time without
// reading the log: a binary search over the segments by the stamp of
// their last record (kept in memory, known from writing or recovery),
// then a binary search over that segment's sparse index reading one
// record header per step, then a scan from the entry found (about an
// index spacing when stamps increase). Stamps come from Options.Clock and
// need not increase: Log.OffsetForTime says what a clock stepped back
// does. The format has nothing for it.
//
// # Retention
//
// With Options.RetentionBytes or RetentionAge set, EnforceRetention (run
// at Open and every Options.RetentionInterval in the background) deletes whole sealed
// segments from the head while the log exceeds RetentionBytes or the head
// segment's newest record is older than RetentionAge. The active segment
// is never deleted. Oldest advances; reads below it return *TooOldError.
// TruncateBefore deletes the head segments below an offset (after an
// fsync). Both delete files without holding the write lock: appends go on.
// Segments go oldest first, each deletion only once a directory fsync
// covers the one before it (a file system may otherwise make a later
// unlink durable before an earlier one, and a crash would leave a gap
// Open refuses); Open fsyncs the directory, covering a deletion of the
// run before. Close waits for a deletion under way: a closed log changes
// no file.
//
// # Purge
//
// Purge removes every record below Next: offsets are not reused, Oldest
// becomes Next, and appends go on from it. It rolls the active segment
// if that holds records (a roll as above: the segment sealed and
// fsynced, then the new, empty segment at Next made durable with its
// directory entry; an empty active segment needs none), then deletes
// every segment before the new active one as retention does, oldest
// first, and fsyncs the directory. A crash before the roll leaves the
// log as it was; during the roll, a roll cut short; during the
// deletions, the segments not yet deleted, followed by the new one:
// never a gap, Oldest somewhere up to the purge point, Next at least
// the purge point. Once Purge has returned, its deletions are durable.
package commitlog
