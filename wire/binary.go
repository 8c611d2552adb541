package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"
)

// MaxAckMessageBytes caps the message of a binary publish ack; longer
// messages are cut on a UTF-8 boundary (as the reference broker does).
const MaxAckMessageBytes = 512

// BinaryPublishBatch is a decoded binary publish batch (flags 0x0001, or
// 0x0009 when Acked). Payloads alias the decoded frame.
type BinaryPublishBatch struct {
	Acked     bool
	RequestID uint64  // when Acked
	AckMode   AckMode // when Acked: AckPerMessage or AckPerBatch
	TenantID  string
	Namespace string
	Stream    string
	Payloads  [][]byte
	// PayloadsAt is where the payloads begin in the decoded body (the
	// offset of the u32 count after the names): from there on the body is
	// laid out as an event batch's (see PrefixEventBatchFrame).
	PayloadsAt int
}

// PublishAck is a decoded binary publish ack (flags 0x0010).
type PublishAck struct {
	RequestID uint64
	OK        bool
	Message   string // empty when OK
}

// BinaryEventBatch is a decoded binary event batch: per-subscriber (flags
// 0x0002) or shared (0x0004), with a base offset when 0x0020 is set.
// Payloads alias the decoded frame; payload i has offset BaseOffset+i.
type BinaryEventBatch struct {
	Shared         bool
	SubscriptionID uint64 // per-subscriber batches only
	HasOffsets     bool
	BaseOffset     uint64
	Payloads       [][]byte
}

func batchSize(payloads [][]byte) int {
	n := 4
	for _, p := range payloads {
		n += 4 + len(p)
	}
	return n
}

func appendName(dst []byte, what, s string) ([]byte, error) {
	if len(s) > 0xFFFF {
		return dst, fmt.Errorf("encode %s: %w (%d bytes)", what, ErrFieldTooLong, len(s))
	}
	if !utf8.ValidString(s) {
		return dst, fmt.Errorf("encode %s: %w", what, ErrInvalidUTF8)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...), nil
}

func appendPayloads(dst []byte, payloads [][]byte) ([]byte, error) {
	if uint64(len(payloads)) > 0xFFFFFFFF {
		return dst, fmt.Errorf("encode batch count: %w", ErrFieldTooLong)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payloads)))
	for _, p := range payloads {
		if uint64(len(p)) > 0xFFFFFFFF {
			return dst, fmt.Errorf("encode payload: %w", ErrFieldTooLong)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
		dst = append(dst, p...)
	}
	return dst, nil
}

// appendNames appends names given as (field, value) pairs, stopping at the
// first that cannot be encoded.
func appendNames(dst []byte, fieldValue ...string) ([]byte, error) {
	for i := 0; i+1 < len(fieldValue); i += 2 {
		var err error
		if dst, err = appendName(dst, fieldValue[i], fieldValue[i+1]); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendPublishBody(dst []byte, tenant, ns, stream string, payloads [][]byte) ([]byte, error) {
	dst, err := appendNames(dst, "tenant_id", tenant, "namespace", ns, "stream", stream)
	if err != nil {
		return dst, err
	}
	return appendPayloads(dst, payloads)
}

// AppendPublishBatchFrame appends a complete fire-and-forget binary publish
// batch frame (flags 0x0001). It allocates only if dst lacks capacity.
func AppendPublishBatchFrame(dst []byte, tenant, ns, stream string, payloads [][]byte) ([]byte, error) {
	at := len(dst)
	dst = slices.Grow(dst, HeaderSize+6+len(tenant)+len(ns)+len(stream)+batchSize(payloads))
	dst = AppendHeader(dst, FlagBinaryPublishBatch, 0)
	out, err := appendPublishBody(dst, tenant, ns, stream, payloads)
	if err != nil {
		return dst[:at], err
	}
	putLength(out, at)
	return out, nil
}

// AppendAckedPublishBatchFrame appends a binary publish batch that asks for
// an ack (flags 0x0009). mode must be AckPerMessage or AckPerBatch.
func AppendAckedPublishBatchFrame(dst []byte, requestID uint64, mode AckMode, tenant, ns, stream string, payloads [][]byte) ([]byte, error) {
	if mode != AckPerMessage && mode != AckPerBatch {
		return dst, fmt.Errorf("encode acked publish: %w (%v)", ErrInvalidAckMode, mode)
	}
	at := len(dst)
	dst = slices.Grow(dst, HeaderSize+9+6+len(tenant)+len(ns)+len(stream)+batchSize(payloads))
	dst = AppendHeader(dst, FlagBinaryPublishBatch|FlagBinaryPublishAcked, 0)
	dst = binary.BigEndian.AppendUint64(dst, requestID)
	dst = append(dst, byte(mode))
	out, err := appendPublishBody(dst, tenant, ns, stream, payloads)
	if err != nil {
		return dst[:at], err
	}
	putLength(out, at)
	return out, nil
}

// AppendPublishAckFrame appends a binary publish ack (flags 0x0010). An
// empty errMsg with ok=true is a success ack; otherwise status is error and
// errMsg is cut to MaxAckMessageBytes on a UTF-8 boundary.
func AppendPublishAckFrame(dst []byte, requestID uint64, ok bool, errMsg string) []byte {
	if ok {
		errMsg = ""
	}
	errMsg = TruncateUTF8(errMsg, MaxAckMessageBytes)
	dst = AppendHeader(dst, FlagBinaryPublishAck, 11+len(errMsg))
	status := byte(1)
	if ok {
		status = 0
	}
	dst = append(dst, status)
	dst = binary.BigEndian.AppendUint64(dst, requestID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(errMsg)))
	return append(dst, errMsg...)
}

// TruncateUTF8 returns s cut to at most n bytes without splitting a rune.
// Invalid UTF-8 is replaced so the result is always valid.
func TruncateUTF8(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AppendEventBatchFrame appends a shared event batch (flags 0x0004, or
// 0x0024 with withOffsets) holding payloads. This is the encode-once frame
// the broker hands to every subscriber.
func AppendEventBatchFrame(dst []byte, withOffsets bool, baseOffset uint64, payloads [][]byte) []byte {
	flags := FlagBinaryEventBatchShared
	if withOffsets {
		flags |= FlagEventBatchOffsets
	}
	return appendEventBatch(dst, flags, 0, baseOffset, payloads)
}

// EventBatchPrefixSize is how many bytes a shared event batch frame has
// before its payload count: the frame header, and the base offset with
// withOffsets.
func EventBatchPrefixSize(withOffsets bool) int {
	if withOffsets {
		return HeaderSize + 8
	}
	return HeaderSize
}

// PrefixEventBatchFrame makes a shared event batch frame (flags 0x0004, or
// 0x0024 with withOffsets) of an event batch body that is already encoded
// at buf[at:] (the u32 count, then each payload as a u32 length and its
// bytes, up to the end of buf), by writing the frame header and base
// offset into the EventBatchPrefixSize(withOffsets) bytes before at. It
// returns the frame, buf[at-EventBatchPrefixSize(withOffsets):], the same
// bytes AppendEventBatchFrame would produce for those payloads, without
// copying them. It panics if at leaves too little room.
func PrefixEventBatchFrame(buf []byte, at int, withOffsets bool, baseOffset uint64) []byte {
	flags := FlagBinaryEventBatchShared
	if withOffsets {
		flags |= FlagEventBatchOffsets
	}
	start := at - EventBatchPrefixSize(withOffsets)
	frame := AppendHeader(buf[start:start], flags, len(buf)-start-HeaderSize)
	if withOffsets {
		frame = binary.BigEndian.AppendUint64(frame, baseOffset)
	}
	return buf[start:]
}

// AppendSubEventBatchFrame appends a per-subscriber event batch (flags
// 0x0002, or 0x0022 with withOffsets) for subscription subID.
func AppendSubEventBatchFrame(dst []byte, subID uint64, withOffsets bool, baseOffset uint64, payloads [][]byte) []byte {
	flags := FlagBinaryEventBatch
	if withOffsets {
		flags |= FlagEventBatchOffsets
	}
	return appendEventBatch(dst, flags, subID, baseOffset, payloads)
}

func appendEventBatch(dst []byte, flags uint16, subID, base uint64, payloads [][]byte) []byte {
	n := batchSize(payloads)
	if flags&FlagBinaryEventBatch != 0 {
		n += 8
	}
	if flags&FlagEventBatchOffsets != 0 {
		n += 8
	}
	dst = slices.Grow(dst, HeaderSize+n)
	dst = AppendHeader(dst, flags, n)
	if flags&FlagBinaryEventBatch != 0 {
		dst = binary.BigEndian.AppendUint64(dst, subID)
	}
	if flags&FlagEventBatchOffsets != 0 {
		dst = binary.BigEndian.AppendUint64(dst, base)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payloads)))
	for _, p := range payloads {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
		dst = append(dst, p...)
	}
	return dst
}

// cursor reads big-endian fields from a payload, reporting where it failed.
type cursor struct {
	b    []byte
	off  int
	what string
}

func (c *cursor) fail(err error, detail string) error { return decodeErr(c.what, c.off, err, detail) }

func (c *cursor) need(n int) error {
	if len(c.b)-c.off < n {
		return c.fail(ErrTruncated, fmt.Sprintf("need %d bytes, have %d", n, len(c.b)-c.off))
	}
	return nil
}

func (c *cursor) u8() (uint8, error) {
	if err := c.need(1); err != nil {
		return 0, err
	}
	v := c.b[c.off]
	c.off++
	return v, nil
}

func (c *cursor) u16() (uint16, error) {
	if err := c.need(2); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(c.b[c.off:])
	c.off += 2
	return v, nil
}

func (c *cursor) u32() (uint32, error) {
	if err := c.need(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(c.b[c.off:])
	c.off += 4
	return v, nil
}

func (c *cursor) u64() (uint64, error) {
	if err := c.need(8); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint64(c.b[c.off:])
	c.off += 8
	return v, nil
}

func (c *cursor) bytes(n int) ([]byte, error) {
	if err := c.need(n); err != nil {
		return nil, err
	}
	v := c.b[c.off : c.off+n : c.off+n]
	c.off += n
	return v, nil
}

func (c *cursor) name(field string) (string, error) {
	b, err := c.nameBytes(field)
	return string(b), err
}

// nameBytes reads a u16-prefixed UTF-8 name as a view of the input.
func (c *cursor) nameBytes(field string) ([]byte, error) {
	n, err := c.u16()
	if err != nil {
		return nil, err
	}
	b, err := c.bytes(int(n))
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, c.fail(ErrInvalidUTF8, field)
	}
	return b, nil
}

// payloads reads a u32 count then count length-prefixed payloads into dst
// (reused), checking the count against the remaining bytes first.
func (c *cursor) payloads(dst [][]byte) ([][]byte, error) {
	count, err := c.u32()
	if err != nil {
		return dst, err
	}
	if uint64(count) > uint64(len(c.b)-c.off)/4 {
		return dst, c.fail(ErrCountTooLarge, fmt.Sprintf("count %d with %d bytes left", count, len(c.b)-c.off))
	}
	dst = slices.Grow(dst[:0], int(count))
	for range count {
		n, err := c.u32()
		if err != nil {
			return dst, err
		}
		p, err := c.bytes(int(n))
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

func (c *cursor) end() error {
	if c.off != len(c.b) {
		return c.fail(ErrTrailingBytes, fmt.Sprintf("%d bytes", len(c.b)-c.off))
	}
	return nil
}

// DecodeAckedPrefix splits the payload of an acked publish (flags 0x0009)
// into its request id, ack mode and the publish-batch body. An error here is
// fatal for the stream (the reference tears it down); an error decoding the
// body is answered with a binary ack error instead.
func DecodeAckedPrefix(payload []byte) (requestID uint64, mode AckMode, body []byte, err error) {
	c := cursor{b: payload, what: "acked publish prefix"}
	if requestID, err = c.u64(); err != nil {
		return 0, 0, nil, err
	}
	m, err := c.u8()
	if err != nil {
		return 0, 0, nil, err
	}
	mode = AckMode(m)
	if mode != AckPerMessage && mode != AckPerBatch {
		return 0, 0, nil, c.fail(ErrInvalidAckMode, fmt.Sprintf("mode %d", m))
	}
	return requestID, mode, payload[c.off:], nil
}

// DecodePublishBatchBody decodes the publish batch body (tenant, namespace,
// stream, payloads) into out, reusing out.Payloads. It leaves the ack fields
// alone. Bytes after the last payload are ignored, as the reference broker
// ignores them (our decoders of broker-to-client layouts reject them).
func DecodePublishBatchBody(body []byte, out *BinaryPublishBatch) error {
	c := cursor{b: body, what: "publish batch"}
	for _, f := range [...]struct {
		field string
		dst   *string
	}{{"tenant_id", &out.TenantID}, {"namespace", &out.Namespace}, {"stream", &out.Stream}} {
		b, err := c.nameBytes(f.field)
		if err != nil {
			return err
		}
		// A stream of publishes names the same stream again and again:
		// keep the string decoded last time when it is equal (comparing
		// does not allocate), so a reused out costs no allocation per name.
		if *f.dst != string(b) {
			*f.dst = string(b)
		}
	}
	out.PayloadsAt = c.off
	var err error
	out.Payloads, err = c.payloads(out.Payloads)
	return err
}

// DecodePublishBatch decodes a binary publish frame payload with flags
// 0x0001 or 0x0009 into out.
func DecodePublishBatch(flags uint16, payload []byte, out *BinaryPublishBatch) error {
	switch flags {
	case FlagBinaryPublishBatch:
		out.Acked, out.RequestID, out.AckMode = false, 0, AckNone
		return DecodePublishBatchBody(payload, out)
	case FlagBinaryPublishBatch | FlagBinaryPublishAcked:
		id, mode, body, err := DecodeAckedPrefix(payload)
		if err != nil {
			return err
		}
		out.Acked, out.RequestID, out.AckMode = true, id, mode
		return DecodePublishBatchBody(body, out)
	}
	return decodeErr("publish batch", 0, ErrWrongFlags, fmt.Sprintf("flags %#04x", flags))
}

// DecodePublishAck decodes a binary publish ack payload (flags 0x0010).
func DecodePublishAck(payload []byte) (PublishAck, error) {
	c := cursor{b: payload, what: "publish ack"}
	status, err := c.u8()
	if err != nil {
		return PublishAck{}, err
	}
	if status > 1 {
		return PublishAck{}, c.fail(ErrInvalidAckStatus, fmt.Sprintf("status %d", status))
	}
	id, err := c.u64()
	if err != nil {
		return PublishAck{}, err
	}
	msg, err := c.name("message")
	if err != nil {
		return PublishAck{}, err
	}
	if err := c.end(); err != nil {
		return PublishAck{}, err
	}
	return PublishAck{RequestID: id, OK: status == 0, Message: msg}, nil
}

// IsEventBatch reports whether flags select a binary event batch layout.
func IsEventBatch(flags uint16) bool {
	base := flags &^ FlagEventBatchOffsets
	return base == FlagBinaryEventBatch || base == FlagBinaryEventBatchShared
}

// DecodeEventBatch decodes an event batch payload with flags 0x0002 or
// 0x0004 (optionally |0x0020) into out, reusing out.Payloads.
func DecodeEventBatch(flags uint16, payload []byte, out *BinaryEventBatch) error {
	if !IsEventBatch(flags) {
		return decodeErr("event batch", 0, ErrWrongFlags, fmt.Sprintf("flags %#04x", flags))
	}
	c := cursor{b: payload, what: "event batch"}
	out.Shared = flags&FlagBinaryEventBatchShared != 0
	out.SubscriptionID, out.BaseOffset = 0, 0
	out.HasOffsets = flags&FlagEventBatchOffsets != 0
	var err error
	if !out.Shared {
		if out.SubscriptionID, err = c.u64(); err != nil {
			return err
		}
	}
	if out.HasOffsets {
		if out.BaseOffset, err = c.u64(); err != nil {
			return err
		}
	}
	if out.Payloads, err = c.payloads(out.Payloads); err != nil {
		return err
	}
	return c.end()
}

// QueueDelivery is one record handed to a queue consumer: its offset in the
// stream, its delivery attempt (1 = first) and its payload.
type QueueDelivery struct {
	Offset  uint64
	Attempt uint16
	Payload []byte
}

// queueDeliveryOverhead is the fixed size of one delivery entry.
const queueDeliveryOverhead = 8 + 2 + 4

// MaxEventOverhead is the most one event adds to its payload in a frame a
// subscriber or a queue consumer reads (beyond the frame header): a
// per-subscription batch of that event alone with offsets (u64
// subscription id, u64 base offset, u32 count, u32 length). A queue
// delivery frame of one record adds less (u32 count, then
// queueDeliveryOverhead). An event larger than a reader's frame limit
// less this may not reach it.
const MaxEventOverhead = 8 + 8 + 4 + 4

// QueueDeliveriesInFrame returns how many of ds, at least one, a queue
// delivery frame (AppendQueueDeliveryFrame) holds within maxPayload
// bytes of frame payload. A delivery alone always counts as fitting,
// even if its overhead takes it past maxPayload.
func QueueDeliveriesInFrame(ds []QueueDelivery, maxPayload int) int {
	size := 4 + queueDeliveryOverhead + len(ds[0].Payload)
	n := 1
	for ; n < len(ds); n++ {
		if size += queueDeliveryOverhead + len(ds[n].Payload); size > maxPayload {
			break
		}
	}
	return n
}

// AppendQueueDeliveryFrame appends a queue delivery frame (extension flag
// FlagQueueDelivery): u32 count, then count × (u64 offset, u16 attempt,
// u32 length, payload).
func AppendQueueDeliveryFrame(dst []byte, ds []QueueDelivery) []byte {
	n := 4
	for _, d := range ds {
		n += queueDeliveryOverhead + len(d.Payload)
	}
	dst = slices.Grow(dst, HeaderSize+n)
	dst = AppendHeader(dst, FlagQueueDelivery, n)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ds)))
	for _, d := range ds {
		dst = binary.BigEndian.AppendUint64(dst, d.Offset)
		dst = binary.BigEndian.AppendUint16(dst, d.Attempt)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(d.Payload)))
		dst = append(dst, d.Payload...)
	}
	return dst
}

// DecodeQueueDeliveries decodes a FlagQueueDelivery payload into dst
// (reused); payloads alias the input.
func DecodeQueueDeliveries(payload []byte, dst []QueueDelivery) ([]QueueDelivery, error) {
	c := cursor{b: payload, what: "queue delivery"}
	count, err := c.u32()
	if err != nil {
		return dst, err
	}
	if uint64(count) > uint64(len(c.b)-c.off)/queueDeliveryOverhead {
		return dst, c.fail(ErrCountTooLarge, fmt.Sprintf("count %d with %d bytes left", count, len(c.b)-c.off))
	}
	dst = slices.Grow(dst[:0], int(count))
	for range count {
		var d QueueDelivery
		if d.Offset, err = c.u64(); err != nil {
			return dst, err
		}
		if d.Attempt, err = c.u16(); err != nil {
			return dst, err
		}
		n, err := c.u32()
		if err != nil {
			return dst, err
		}
		if d.Payload, err = c.bytes(int(n)); err != nil {
			return dst, err
		}
		dst = append(dst, d)
	}
	return dst, c.end()
}
