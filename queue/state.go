package queue

import (
	"encoding/binary"
	"fmt"
	"math"
)

// State record types and format version; see "State log" in the package
// doc.
const (
	recSnapshot  byte = 1
	recOps       byte = 2
	stateVersion byte = 1

	opAck       byte = 1
	opDead      byte = 2
	opDelivered byte = 3

	maxAttemptsEncoded = math.MaxInt32
)

// op is one change of group state: offset off acked, dead-lettered, or
// delivered for the attempts-th time.
type op struct {
	kind     byte
	off      uint64
	attempts int // opDelivered only
}

// pendingRec is an offset that was delivered and is not done yet.
type pendingRec struct {
	off      uint64
	attempts int
}

// snapshot is the whole durable state of a group: every offset below
// floor is done; in [floor, cursor) exactly the offsets in pending are not
// (sorted ascending, with their attempt counts); no offset from cursor on
// was ever delivered.
type snapshot struct {
	name          string
	floor, cursor uint64
	pending       []pendingRec
}

// stateRecord is a decoded state-log record: a snapshot, or ops written
// while the snapshot at state-log offset ref was the latest.
type stateRecord struct {
	kind byte
	snap snapshot
	ref  uint64
	ops  []op
}

func appendSnapshot(dst []byte, s *snapshot) []byte {
	dst = append(dst, recSnapshot, stateVersion)
	dst = binary.AppendUvarint(dst, uint64(len(s.name)))
	dst = append(dst, s.name...)
	dst = binary.AppendUvarint(dst, s.floor)
	dst = binary.AppendUvarint(dst, s.cursor-s.floor)
	dst = binary.AppendUvarint(dst, uint64(len(s.pending)))
	prev := s.floor
	for _, p := range s.pending {
		dst = binary.AppendUvarint(dst, p.off-prev)
		dst = binary.AppendUvarint(dst, uint64(p.attempts))
		prev = p.off
	}
	return dst
}

func appendOps(dst []byte, ref uint64, ops []op) []byte {
	dst = append(dst, recOps, stateVersion)
	dst = binary.AppendUvarint(dst, ref)
	var prev uint64
	for _, o := range ops {
		dst = append(dst, o.kind)
		dst = binary.AppendVarint(dst, int64(o.off-prev))
		if o.kind == opDelivered {
			dst = binary.AppendUvarint(dst, uint64(o.attempts))
		}
		prev = o.off
	}
	return dst
}

// stateDecoder reads the fields of one record; the first error sticks.
type stateDecoder struct {
	p   []byte
	err error
}

func (d *stateDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *stateDecoder) byte() byte {
	if d.err != nil || len(d.p) == 0 {
		d.fail("truncated")
		return 0
	}
	b := d.p[0]
	d.p = d.p[1:]
	return b
}

func (d *stateDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	d.advance(n)
	return v
}

// advance consumes a varint of n bytes, which must be valid and in its
// shortest form (so every state has one encoding).
func (d *stateDecoder) advance(n int) {
	switch {
	case n <= 0:
		d.fail("bad varint")
	case n > 1 && d.p[n-1] == 0:
		d.fail("overlong varint")
	default:
		d.p = d.p[n:]
	}
}

func (d *stateDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.p)
	d.advance(n)
	return v
}

func (d *stateDecoder) attempts(least uint64) int {
	a := d.uvarint()
	if d.err == nil && (a < least || a > maxAttemptsEncoded) {
		d.fail("attempt count %d out of range", a)
	}
	return int(a)
}

// decodeState decodes one state record. Its errors are reasons for a
// *CorruptStateError.
func decodeState(p []byte) (stateRecord, error) {
	d := stateDecoder{p: p}
	var r stateRecord
	r.kind = d.byte()
	if v := d.byte(); d.err == nil && v != stateVersion {
		return r, fmt.Errorf("unknown format version %d", v)
	}
	switch r.kind {
	case recSnapshot:
		decodeSnapshot(&d, &r.snap)
	case recOps:
		r.ref = d.uvarint()
		var prev uint64
		for d.err == nil && len(d.p) > 0 {
			o := op{kind: d.byte()}
			o.off = prev + uint64(d.varint())
			switch o.kind {
			case opAck, opDead:
			case opDelivered:
				o.attempts = d.attempts(1)
			default:
				d.fail("unknown op %d", o.kind)
			}
			r.ops = append(r.ops, o)
			prev = o.off
		}
	default:
		d.fail("unknown record type %d", r.kind)
	}
	if d.err == nil && len(d.p) > 0 {
		d.fail("%d bytes after the record", len(d.p))
	}
	return r, d.err
}

func decodeSnapshot(d *stateDecoder, s *snapshot) {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p)) {
		d.fail("name length %d beyond the record", n)
		return
	}
	if d.err != nil {
		return
	}
	s.name = string(d.p[:n])
	d.p = d.p[n:]
	s.floor = d.uvarint()
	span := d.uvarint()
	s.cursor = s.floor + span
	if d.err == nil && s.cursor < s.floor {
		d.fail("cursor overflows")
	}
	count := d.uvarint()
	if d.err == nil && (count > span || count > uint64(len(d.p))/2) {
		d.fail("%d pending offsets do not fit", count)
	}
	if d.err != nil {
		return
	}
	s.pending = make([]pendingRec, 0, count)
	prev := s.floor
	for i := range count {
		delta := d.uvarint()
		if d.err == nil && ((i > 0 && delta == 0) || delta >= s.cursor-prev) {
			d.fail("pending offset out of order or outside [floor, cursor)")
		}
		p := pendingRec{off: prev + delta, attempts: d.attempts(0)}
		if d.err != nil {
			return
		}
		s.pending = append(s.pending, p)
		prev = p.off
	}
}
