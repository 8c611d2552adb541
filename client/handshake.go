package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// withDeadline runs op, a blocking read or write on a stream whose
// deadline setter is set, so that it returns when ctx ends: ctx's deadline
// becomes the stream deadline and a cancellation moves it to the past. The
// deadline is cleared afterwards.
func withDeadline(ctx context.Context, set func(time.Time) error, op func() error) error {
	if ctx.Done() == nil {
		return op()
	}
	if d, ok := ctx.Deadline(); ok {
		_ = set(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = set(time.Unix(1, 0))
		close(fired)
	})
	err := op()
	if !stop() {
		<-fired
	}
	_ = set(time.Time{})
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// writeAll writes b to str, interruptible by ctx.
func writeAll(ctx context.Context, str *quic.Stream, b []byte) error {
	return withDeadline(ctx, str.SetWriteDeadline, func() error {
		_, err := str.Write(b)
		return err
	})
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

// authenticate sends auth on a fresh bidirectional stream and reads the
// reply, returning the broker's capability flags. A legacy broker answers
// `ok` (flags wire.OriginalV1Flags); a refusal is a *ServerError.
func (c *Client) authenticate(ctx context.Context, str *quic.Stream, r *wire.Reader) (uint16, error) {
	offer := wire.KnownFlags | wire.ExtensionCaps
	if c.opts.JSONCache {
		offer &^= wire.CapCacheBin
	}
	token := c.opts.Token
	if c.opts.TokenSource != nil {
		var err error
		if token, err = c.opts.TokenSource(ctx); err != nil {
			return 0, fmt.Errorf("felix: token source: %w", err)
		}
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

// openAuthedStream opens a bidirectional stream on slot's connection
// (dialing it if needed) and authenticates it. op names it in errors.
func (c *Client) openAuthedStream(ctx context.Context, slot *connSlot, op string) (*quic.Stream, *wire.Reader, uint16, error) {
	sc, err := slot.get(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	str, err := sc.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, 0, c.streamErr(ctx, "open "+op+" stream", err)
	}
	// Everything the stream brings is read through r, so it may buffer:
	// one Read takes every reply that has arrived, instead of two per frame.
	r := wire.NewReader(bufio.NewReaderSize(str, streamReadBuffer), c.opts.MaxFrameBytes)
	flags, err := c.authenticate(ctx, str, r)
	if err != nil {
		str.CancelRead(streamCodeCancel)
		str.CancelWrite(streamCodeCancel)
		return nil, nil, 0, c.streamErr(ctx, op+" auth", err)
	}
	return str, r, flags, nil
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

// tokenExpired reports whether token is a JWT whose exp claim has passed.
// It reads the claims without verifying them: only to tell the caller why
// the broker refused the token (a Felix token's exp, see docs/security.md).
func tokenExpired(token string, now time.Time) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == nil {
		return false
	}
	exp, err := claims.Exp.Float64()
	return err == nil && now.After(time.Unix(int64(exp), 0))
}
