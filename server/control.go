package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/wire"
)

// control is the state of one client-opened bidirectional stream.
type control struct {
	c *conn
	// ctx ends with the connection, or when the identity's token expires
	// (cause errTokenExpired): the stream and what it started end then.
	ctx   context.Context
	bs    *quic.Stream
	r     *wire.Reader
	w     *wire.Writer
	id    *Identity
	peer  uint16 // negotiated client capabilities
	pub   *publisher
	batch wire.BinaryPublishBatch
	// owned is the buffer of its own the current frame's payload was read
	// into (binary publishes), or nil; see framedBody.
	owned []byte
	// br buffers the stream's input; out holds replies not yet written.
	// Replies are written when no further request is already buffered, so
	// pipelined requests get their replies in one stream write.
	br  *bufio.Reader
	out []byte
	// bin holds the state of binary cache requests (see cachebin.go).
	bin binCache
	// counted is how many bytes of out the connection's reply budget
	// counts; reserved, the reservation of the cache read being served
	// (see replybudget.go).
	counted, reserved int64
	// grace, armed by expire when the token expires, resets the write
	// side if the handler has not done so within expiryWriteGrace.
	grace *time.Timer
}

// maxPendingReplies bounds the replies held back for one write.
const maxPendingReplies = 64 << 10

// handleControl serves a client-opened bidirectional stream. Until the
// stream authenticates it holds only its frame reader (unbuffered, with
// the pre-auth limit) and writer: its read buffer and its control state
// are allocated once it has authenticated.
func (c *conn) handleControl(bs *quic.Stream) {
	r, w := c.preAuthReader(bs), wire.NewWriter(bs)
	id, peer, err := c.authenticate(r, w, bs.SetDeadline) // the read and the answers
	if err != nil {
		c.finish(bs, err)
		return
	}
	ctl := &control{c: c, bs: bs, br: c.authenticatedReader(r, bs), r: r, w: w}
	err = ctl.run(id, peer)
	ctl.uncount()
	if errors.Is(err, errSubscribed) {
		return // the subscription owns the stream now
	}
	c.finish(bs, err)
}

var errSubscribed = errors.New("subscribed")

// run serves the stream's requests once it has authenticated as id, with
// the client capabilities peer.
func (ctl *control) run(id *Identity, peer uint16) error {
	var stop func()
	ctl.ctx, stop = ctl.c.untilExpiry(id, ctl.expire)
	defer func() {
		stop() // counts an expiry that is due and runs expire first
		ctl.endExpiry()
	}()
	ctl.id, ctl.peer, ctl.pub = id, peer, newPublisher(ctl.c, id)
	if ctl.binCache() {
		ctl.r.AllowFlags(wire.FlagBinaryCache)
	}
	for {
		// A binary publish is read into a buffer of its own, which the
		// stream then keeps as the event frame (no copy of the payloads).
		f, owned, err := ctl.r.ReadFrameOwned(wire.FlagBinaryPublishBatch, broker.FramedHeadroom)
		ctl.owned = owned
		switch {
		case errors.Is(err, wire.ErrUnknownFlags):
			err = ctl.unsupportedFlags()
		case err != nil:
			return ctl.end(err) // at the expiry: expire stopped the read
		case ctl.expired():
			// Read as the token expired, before the expiry timer stopped
			// the read (or from the read buffer): serve nothing more.
			return ctl.end(errTokenExpired)
		default:
			ctl.c.s.busy.Add(1)
			err = ctl.handle(f)
			ctl.account()
			ctl.c.s.busy.Add(-1)
		}
		if err != nil {
			return ctl.end(err)
		}
		if ctl.br.Buffered() == 0 || len(ctl.out) >= maxPendingReplies {
			if err := ctl.flush(); err != nil {
				return ctl.end(err)
			}
		}
	}
}

// expiryWriteGrace bounds how long after its token's expiry a control
// stream's handler has to write its pending replies and reset the stream
// (see control.end); a handler blocked longer (a client that does not read
// its replies, a publish held by a block-policy subscriber) gets its write
// side reset by expire's timer, which ends the blocked write.
const expiryWriteGrace = 2 * time.Second

// expire is the control stream's part of its token's expiry (see
// untilExpiry; it runs once, from the timer, or from stop after a handler
// that read a frame past the expiry already ended the stream, which
// leaves it nothing to do):
// it stops reading, which wakes a handler waiting for a request, and arms
// the grace timer. Writing is the handler's: it delivers the replies to
// the requests it served, then resets the stream (end).
func (ctl *control) expire(code quic.StreamErrorCode) {
	ctl.bs.CancelRead(code)
	ctl.grace = time.AfterFunc(expiryWriteGrace, func() { ctl.bs.CancelWrite(code) })
}

// end flushes the pending replies and returns err, why the handler stops.
// At or after the token's expiry it also ends the stream as the expiry
// does: the replies written so far are marked reliable, then the stream is
// reset both ways with streamCodeTokenExpired (before finish, whose own
// reset is then a no-op). With a client that offers RESET_STREAM_AT the reset
// arrives after every reply to a request the broker served (the client
// may take a request left without a reply as not served); without it the
// reset discards what the client has not received yet, as a plain reset
// does.
func (ctl *control) end(err error) error {
	if errors.Is(err, errSubscribed) {
		return err // the subscription ended; the stream was finished then
	}
	flushed := ctl.flush() == nil
	if !ctl.expired() && !tokenExpired(ctl.ctx) {
		return err
	}
	if flushed { // not after half a write: a reply would arrive cut short
		ctl.bs.SetReliableBoundary()
	}
	ctl.bs.CancelWrite(streamCodeTokenExpired)
	ctl.bs.CancelRead(streamCodeTokenExpired)
	return err
}

// endExpiry completes an expiry after the handler returned (and stop ran
// expire if the expiry was due): it stops the grace timer and resets the
// write side after everything written, as end does; both are no-ops when
// end or the grace timer already did it. So the first reset's code is
// streamCodeTokenExpired whichever came first, before finish.
func (ctl *control) endExpiry() {
	if ctl.grace == nil {
		return
	}
	ctl.grace.Stop()
	ctl.bs.SetReliableBoundary()
	ctl.bs.CancelWrite(streamCodeTokenExpired)
}

// expired reports whether the token that authenticated the stream has
// expired (by the clock, not waiting for the expiry timer).
func (ctl *control) expired() bool { return ctl.id.expired() }

// flush writes the pending replies.
func (ctl *control) flush() error {
	if len(ctl.out) == 0 {
		return nil
	}
	err := ctl.w.WriteRaw(ctl.out)
	ctl.written()
	ctl.out = ctl.out[:0]
	if cap(ctl.out) > 1<<20 { // do not pin a large buffer after a rare big reply
		ctl.out = nil
	}
	return err
}

// handle serves one frame. As in the reference, flag bit 0x0001 selects a
// binary publish batch (acked with 0x0008) whatever the other known bits;
// a frame without it is read as JSON, so a binary layout only brokers send
// (an event batch, a publish ack) fails to decode and resets the stream.
func (ctl *control) handle(f wire.Frame) error {
	switch {
	case f.Flags&wire.FlagBinaryCache != 0:
		if !ctl.binCache() { // the reader only allows it when negotiated; be sure
			return ctl.unsupportedFlags()
		}
		if f.Flags != wire.FlagBinaryCache { // our extension: no other bit goes with it
			return &wire.DecodeError{What: "binary cache frame", Err: wire.ErrWrongFlags, Detail: fmt.Sprintf("flags %#04x", f.Flags)}
		}
		return ctl.binaryCache(f.Payload)
	case f.Flags&wire.FlagBinaryPublishBatch != 0:
		if f.Flags&wire.FlagBinaryPublishAcked != 0 {
			return ctl.ackedBinaryPublish(f.Payload)
		}
		return ctl.binaryPublish(f.Payload)
	}
	m, err := wire.DecodeMessage(f.Payload)
	if err != nil {
		return err // malformed JSON: reset, no reply
	}
	return ctl.handleMessage(m)
}

// unsupportedFlags answers a frame whose flags this stream does not accept;
// the stream goes on.
func (ctl *control) unsupportedFlags() error {
	return ctl.reply(&wire.ErrorMessage{Message: "unsupported frame flags"})
}

// reply queues m; it is written with the replies of the requests already
// buffered (see run).
func (ctl *control) reply(m wire.Message) error {
	b, err := wire.AppendMessageFrame(ctl.out, m)
	if err != nil {
		return err
	}
	ctl.out = b
	return nil
}

func (ctl *control) fail(msg string) error {
	if err := ctl.reply(&wire.ErrorMessage{Message: msg}); err != nil {
		return err
	}
	return errClose
}

func (ctl *control) handleMessage(m wire.Message) error {
	switch m := m.(type) {
	case *wire.Auth:
		return ctl.fail("auth already established")
	case *wire.Publish:
		return ctl.jsonPublish(m.TenantID, m.Namespace, m.Stream, [][]byte{m.Payload}, m.RequestID, m.Ack, wire.AckPerMessage, "missing request_id for acked publish")
	case *wire.PublishBatch:
		return ctl.jsonPublish(m.TenantID, m.Namespace, m.Stream, m.Payloads, m.RequestID, m.Ack, wire.AckPerBatch, "missing request_id for acked publish batch")
	case *wire.Subscribe:
		return ctl.subscribe(m)
	case *wire.CachePut:
		return ctl.cachePut(m, false)
	case *wire.CacheGet:
		return ctl.cacheGet(m, false)
	case *wire.CacheDelete:
		return ctl.cacheDelete(m)
	case *wire.CacheTTL:
		return ctl.cacheTTL(m)
	case *wire.CacheMGet:
		return ctl.cacheMGet(m)
	case *wire.CacheIncr:
		return ctl.cacheIncr(m)
	case *wire.CacheExpire:
		return ctl.cacheExpire(m)
	case *wire.CacheScan:
		return ctl.cacheScan(m)
	case *wire.QueueJoin:
		return ctl.queueJoin(m)
	case *wire.QueueStats:
		return ctl.queueStats(m)
	case *wire.QueueDelete:
		return ctl.queueDelete(m)
	case *wire.StreamPurge:
		return ctl.streamPurge(m)
	case *wire.CacheFlush:
		return ctl.cacheFlush(m)
	case *wire.Serve:
		return ctl.serve(m)
	case *wire.Request:
		return ctl.requests(m)
	case *wire.SubscribeCursorError:
		return ctl.fail("subscribe_cursor_error is a server-to-client message")
	case *wire.ErrorMessage:
		return errClose
	default: // auth_ok, subscribed, event*, cache_value, cache_ok, cache_incr_value, cache_expire_result, cache_scan_page, publish_ok, publish_error, ok, stream_purged, stream_error, cache_flushed
		return ctl.unexpected(m)
	}
}

// unexpected answers m, a message the stream does not take. An
// extension's message on a stream that did not negotiate it is an unknown
// message, as for the reference (and before auth): the stream is reset.
// Any other gets error "unexpected message type" and the stream closes.
func (ctl *control) unexpected(m wire.Message) error {
	if caps := extensionOf(m.Type()); caps != 0 && ctl.peer&caps == 0 {
		return errNotNegotiated(m.Type())
	}
	return ctl.fail("unexpected message type")
}

// extensionOf returns the capabilities of the extensions whose messages
// include t, a message no client request starts with (a broker's reply,
// or a message of a consumer or responder stream): any of them makes t
// known on the stream. 0 for the reference's messages.
func extensionOf(t wire.MsgType) uint16 {
	switch t {
	case wire.TypeCacheDeleted, wire.TypeCacheTTLValue, wire.TypeCacheValues, wire.TypeCacheIncrValue,
		wire.TypeCacheExpireResult, wire.TypeCacheScanPage:
		return wire.CapCacheExt
	case wire.TypeCacheError: // also the management extension's cache_flush refusals
		return wire.CapCacheExt | wire.CapManage
	case wire.TypeQueueJoined, wire.TypeQueueAck, wire.TypeQueueNack, wire.TypeQueueLeave, wire.TypeQueueOK,
		wire.TypeQueueError, wire.TypeQueueStatsValue:
		return wire.CapQueue
	case wire.TypeServing, wire.TypeServiceRequest, wire.TypeServiceReply, wire.TypeServiceError,
		wire.TypeReply, wire.TypeRequestError:
		return wire.CapRequest
	case wire.TypeStreamPurged, wire.TypeStreamError, wire.TypeCacheFlushed:
		return wire.CapManage
	}
	return 0
}

func (ctl *control) jsonPublish(tenant, ns, stream string, payloads [][]byte, reqID *uint64, ack *wire.AckMode, def wire.AckMode, missing string) error {
	if ctl.otherTenant(tenant) {
		return ctl.fail("tenant mismatch")
	}
	mode := def
	if ack != nil {
		mode = *ack
	}
	if mode != wire.AckNone && reqID == nil {
		// The permission is checked first, as in the reference: a denied
		// request that cannot be correlated closes the stream.
		if !ctl.authorize(ActionPublish, StreamResource(tenant, ns, stream)) {
			return ctl.fail("forbidden")
		}
		return ctl.reply(&wire.ErrorMessage{Message: missing})
	}
	if mode == wire.AckNone {
		if err := ctl.pub.publishUnacked(ns, stream, payloads, broker.Framed{}); errors.Is(err, errForbidden) {
			return ctl.fail("forbidden")
		}
		return nil
	}
	if err := ctl.pub.publish(ns, stream, payloads, broker.Framed{}); err != nil {
		return ctl.reply(&wire.PublishError{RequestID: *reqID, Message: err.Error()})
	}
	return ctl.reply(&wire.PublishOK{RequestID: *reqID})
}

// binaryPublish handles fire-and-forget 0x0001. Malformed input and a
// tenant mismatch reset the stream silently (as the reference); a denied
// publish gets error "forbidden" and the stream ends, exactly as an unacked
// JSON publish (the reference resets silently there).
func (ctl *control) binaryPublish(payload []byte) error {
	if err := wire.DecodePublishBatchBody(payload, &ctl.batch); err != nil {
		return err
	}
	if ctl.otherTenant(ctl.batch.TenantID) {
		return &wire.DecodeError{What: "publish batch", Err: errTenantMismatch}
	}
	err := ctl.pub.publishUnacked(ctl.batch.Namespace, ctl.batch.Stream, ctl.batch.Payloads, framedBody(ctl.owned, payload, &ctl.batch))
	if errors.Is(err, errForbidden) {
		return ctl.fail("forbidden") // as an unacked JSON publish
	}
	return nil // unknown stream or over the rate limit: dropped (counted)
}

var errTenantMismatch = errors.New("tenant mismatch")

// otherTenant reports whether a request names a tenant other than the
// one its stream authenticated as, and counts it
// (Counters.TenantMismatches): the caller refuses it as a tenant mismatch.
func (ctl *control) otherTenant(tenant string) bool { return ctl.c.s.otherTenant(ctl.id, tenant) }

// otherTenant is control.otherTenant for a stream authenticated as id.
func (s *Server) otherTenant(id *Identity, tenant string) bool {
	if tenant == id.Tenant {
		return false
	}
	s.stats.TenantMismatches.Add(1)
	return true
}

// ackedBinaryPublish handles 0x0009: a bad prefix resets the stream; every
// later problem is answered with a binary ack error and the stream goes on.
func (ctl *control) ackedBinaryPublish(payload []byte) error {
	reqID, _, body, err := wire.DecodeAckedPrefix(payload)
	if err != nil {
		return err
	}
	msg := ""
	switch {
	case wire.DecodePublishBatchBody(body, &ctl.batch) != nil:
		msg = "malformed publish batch"
	case ctl.otherTenant(ctl.batch.TenantID):
		msg = "tenant mismatch"
	default:
		if err := ctl.pub.publish(ctl.batch.Namespace, ctl.batch.Stream, ctl.batch.Payloads, framedBody(ctl.owned, body, &ctl.batch)); err != nil {
			msg = err.Error()
		}
	}
	ctl.out = wire.AppendPublishAckFrame(ctl.out, reqID, msg == "", msg)
	return nil
}
