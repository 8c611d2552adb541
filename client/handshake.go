package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// withDeadline runs op, a blocking read or write on a stream whose
// deadline setter is set, so that it returns when ctx ends: when ctx is
// done (cancelled, or its deadline passed) the stream deadline moves to the
// past, and is cleared again after op. A ctx already done fails at once.
//
// ctx's deadline is not copied onto the stream: ctx's Done fires at that
// deadline anyway, and a stream deadline makes every blocking quic-go
// write and read arm a timer of its own (a cost on each batch published).
func withDeadline(ctx context.Context, set func(time.Time) error, op func() error) error {
	if ctx.Done() == nil {
		return op()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = set(time.Unix(1, 0))
		close(fired)
	})
	err := op()
	if !stop() {
		<-fired
		_ = set(time.Time{})
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// writeAll writes b to str, interruptible by ctx.
func writeAll(ctx context.Context, str *quic.Stream, b []byte) error {
	_, err := writeSome(ctx, str, b)
	return err
}

// writeSome is writeAll that also returns how many bytes of b were
// written (handed to the stream) when it fails: 0 when ctx ended while b
// waited for flow-control credit, so that nothing of it is on the stream.
func writeSome(ctx context.Context, str *quic.Stream, b []byte) (n int, err error) {
	err = withDeadline(ctx, str.SetWriteDeadline, func() (err error) {
		n, err = str.Write(b)
		return err
	})
	return n, err
}

// readMessage reads the next frame and decodes it as a JSON message.
func readMessage(ctx context.Context, setDeadline func(time.Time) error, r *wire.Reader) (wire.Message, error) {
	var m wire.Message
	err := withDeadline(ctx, setDeadline, func() error {
		f, err := r.ReadFrame()
		if err != nil {
			return err
		}
		if f.Flags != 0 {
			return &ProtocolError{Detail: fmt.Sprintf("expected a JSON reply, got frame flags %#04x", f.Flags)}
		}
		m, err = wire.DecodeMessage(f.Payload)
		if err != nil {
			return &ProtocolError{Detail: err.Error()}
		}
		return nil
	})
	return m, err
}

// authenticate sends auth with token on a fresh bidirectional stream and
// reads the reply, returning the broker's capability flags. A legacy
// broker answers `ok` (flags wire.OriginalV1Flags); a refusal is a
// *ServerError.
func (c *Client) authenticate(ctx context.Context, str *quic.Stream, r *wire.Reader, token string) (uint16, error) {
	offer := wire.KnownFlags | wire.ExtensionCaps
	if c.opts.JSONCache {
		offer &^= wire.CapCacheBin
	}
	frame, err := wire.AppendMessageFrame(nil, &wire.Auth{
		TenantID: c.opts.TenantID, Token: token, ClientFlags: wire.U16(offer),
	})
	if err != nil {
		return 0, err
	}
	if err := writeAll(ctx, str, frame); err != nil {
		return 0, err
	}
	m, err := readMessage(ctx, str.SetReadDeadline, r)
	if err != nil {
		return 0, err
	}
	var flags uint16
	switch m := m.(type) {
	case *wire.AuthOK:
		flags = m.ServerFlags
	case *wire.OK:
		flags = wire.OriginalV1Flags
	case *wire.ErrorMessage:
		err := &ServerError{Message: m.Message}
		if m.Message == "auth failed" && tokenExpired(token, time.Now()) {
			return 0, fmt.Errorf("%w (%w)", err, ErrTokenExpired)
		}
		return 0, err
	default:
		return 0, &ProtocolError{Detail: fmt.Sprintf("unexpected %q in reply to auth", m.Type())}
	}
	c.serverFlags.Store(uint32(flags))
	return flags, nil
}

// authedStream is a bidirectional stream authenticated by openAuthedStream.
type authedStream struct {
	str   *quic.Stream
	r     *wire.Reader
	flags uint16 // the broker's capabilities on this stream
	// life is the validity of the stream's token, for rotation: zero when
	// the token is static (no TokenSource), opaque or has no exp.
	life tokenLife
}

// openAuthedStream opens a bidirectional stream on slot's connection
// (dialing it if needed) and authenticates it with token, or with
// c.token's when token is empty. op names it in errors.
func (c *Client) openAuthedStream(ctx context.Context, slot *connSlot, op, token string) (authedStream, error) {
	return retryUnused(func() (authedStream, *slotConn, error) { return c.openAuthedStreamOnce(ctx, slot, op, token) })
}

// retryUnused runs try, and once more if it failed on a connection the
// broker closed before any stream authenticated on it (its auth deadline
// passed as try opened the first one): nothing was lost, so connSlot.get
// dials a new connection quietly, even with reconnection disabled.
//
// The failure may reach the stream before the connection's context ends
// (quic-go fails the streams with the close error first): then the close
// is waited for, briefly, so that the second try dials anew instead of
// taking the closing connection again.
func retryUnused[T any](try func() (T, *slotConn, error)) (T, error) {
	v, sc, err := try()
	if err == nil || sc == nil {
		return v, err
	}
	if !closedUnauthenticated(sc.conn) {
		if !isAuthTimeoutClose(err) {
			return v, err
		}
		t := time.NewTimer(unusedCloseWait)
		defer t.Stop()
		select {
		case <-sc.conn.Context().Done():
		case <-t.C:
			return v, err
		}
	}
	v, _, err = try()
	return v, err
}

// unusedCloseWait bounds retryUnused's wait for a connection whose streams
// already failed with the broker's close to end itself.
const unusedCloseWait = time.Second

// openAuthedStreamOnce is one attempt of openAuthedStream; it also
// returns the connection it tried, if it got one.
func (c *Client) openAuthedStreamOnce(ctx context.Context, slot *connSlot, op, token string) (authedStream, *slotConn, error) {
	sc, err := slot.get(ctx)
	if err != nil {
		return authedStream{}, nil, err
	}
	if token == "" {
		if token, err = c.token(ctx); err != nil {
			return authedStream{}, sc, c.streamErr(ctx, op+" auth", err)
		}
	}
	str, err := sc.conn.OpenStreamSync(ctx)
	if err != nil {
		return authedStream{}, sc, c.streamErr(ctx, "open "+op+" stream", err)
	}
	// Everything the stream brings is read through r, so it may buffer:
	// one Read takes every reply that has arrived, instead of two per frame.
	r := wire.NewReader(bufio.NewReaderSize(str, streamReadBuffer), c.opts.MaxFrameBytes)
	flags, err := c.authenticate(ctx, str, r, token)
	if err != nil {
		abortStream(str)
		return authedStream{}, sc, c.streamErr(ctx, op+" auth", err)
	}
	return authedStream{str: str, r: r, flags: flags, life: c.rotationLife(token)}, sc, nil
}

// streamReadBuffer is the read buffer of a stream the SDK reads for its
// whole life (publish acks, cache replies, queue deliveries, events). Each
// Read of a quic-go stream takes its lock and does flow-control
// accounting; with the buffer, a burst of small frames costs one Read.
const streamReadBuffer = 8 << 10

// streamErr classifies an error from a stream operation: the caller's
// context and client shutdown win, broker replies pass through, anything
// else is a lost connection.
func (c *Client) streamErr(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case c.isClosed():
		return ErrClosed
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return ctx.Err()
	case isServerReply(err), errors.As(err, new(*ProtocolError)):
		return err
	}
	return &ConnectionError{Op: op, Err: err}
}
