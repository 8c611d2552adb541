package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Reader reads frames from an io.Reader. It reuses one payload buffer, so a
// Frame's payload is only valid until the next ReadFrame call. It is not
// safe for concurrent use.
type Reader struct {
	r      io.Reader
	br     *bufio.Reader // r, when it is a bufio.Reader over direct (SetDirect)
	direct io.Reader
	max    int
	allow  uint16 // extension frame flags accepted besides KnownFlags
	hdr    [HeaderSize]byte
	buf    []byte
	frames uint64
}

// firstGrowth is the first step by which a payload buffer grows; each
// later step is the size already held, so a buffer is at most twice the
// bytes received (or firstGrowth): a peer claiming a large length must
// send the bytes before we hold them, which keeps a stream that announces
// a frame and stalls (thousands of them, before auth) cheap.
const firstGrowth = 1 << 10

// NewReader returns a Reader over r that rejects payloads larger than
// maxPayload bytes (0 means DefaultMaxFrameBytes).
func NewReader(r io.Reader, maxPayload int) *Reader {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxFrameBytes
	}
	return &Reader{r: r, max: maxPayload}
}

// SetMaxPayload changes the payload limit for the frames read next (0
// means DefaultMaxFrameBytes), as a server's after a stream authenticates.
func (r *Reader) SetMaxPayload(maxPayload int) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxFrameBytes
	}
	r.max = maxPayload
}

// AllowFlags makes the Reader accept extension frame flags (e.g.
// FlagQueueDelivery) as known, for a peer that negotiated them.
func (r *Reader) AllowFlags(mask uint16) { r.allow = mask }

// Reset points the Reader at a new source, keeping its buffer (and
// forgetting SetDirect).
func (r *Reader) Reset(src io.Reader) { r.r, r.br, r.direct = src, nil, nil; r.frames = 0 }

// SetDirect tells a Reader whose source is a *bufio.Reader that this
// bufio.Reader reads src (and nothing else reads src): ReadFrameOwned then
// takes what the bufio.Reader has buffered of an owned payload and reads
// the rest from src straight into the payload, sparing a copy through the
// bufio.Reader's buffer. It does nothing when the source is not a
// *bufio.Reader.
func (r *Reader) SetDirect(src io.Reader) {
	if br, ok := r.r.(*bufio.Reader); ok {
		r.br, r.direct = br, src
	}
}

// MaxPayload returns the payload limit this Reader enforces.
func (r *Reader) MaxPayload() int { return r.max }

// ReadFrame reads the next frame. It returns io.EOF when the source ends
// cleanly between frames, and an error wrapping ErrTruncated when it ends
// inside one. A frame with unknown flag bits is consumed whole and reported
// with an error wrapping ErrUnknownFlags (non-fatal, see IsFatal) together
// with the frame itself.
func (r *Reader) ReadFrame() (Frame, error) {
	f, _, err := r.ReadFrameOwned(0, 0)
	return f, err
}

// MaxOwnedFrame bounds the buffer ReadFrameOwned allocates for one frame
// (headroom and payload): a larger payload is read as ReadFrame reads it,
// growing the reused buffer no faster than its bytes arrive.
const MaxOwnedFrame = 64 << 10

// ReadFrameOwned is ReadFrame for a caller that keeps some payloads: the
// payload of a frame whose flags share a bit with mask, when headroom plus
// its length is at most MaxOwnedFrame, is read into a fresh buffer of
// headroom+length bytes, returned as owned, with Frame.Payload =
// owned[headroom:]. The caller owns that buffer: the payload stays valid
// after the next read, and the headroom is free for the caller to write (a
// header in front of the payload, say). For any other frame owned is nil
// and the frame is as ReadFrame returns it. Errors are ReadFrame's.
func (r *Reader) ReadFrameOwned(mask uint16, headroom int) (f Frame, owned []byte, err error) {
	n, err := io.ReadFull(r.r, r.hdr[:])
	if err != nil {
		if errors.Is(err, io.EOF) && n == 0 {
			return Frame{}, nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, nil, decodeErr("frame header", n, ErrTruncated, "stream ended inside header")
		}
		return Frame{}, nil, err
	}
	h, herr := parseHeader(r.hdr[:], r.max, r.allow) // an extension this reader accepts is no error
	if herr != nil && !isUnknownFlags(herr) {
		return Frame{}, nil, herr
	}
	var payload []byte
	if h.Flags&mask != 0 && headroom >= 0 && headroom+int(h.Length) <= MaxOwnedFrame {
		// Straight into the new buffer: no copy through the reused one.
		owned = make([]byte, headroom+int(h.Length))
		payload = owned[headroom:]
		if got, err := r.readOwned(payload); err != nil {
			return Frame{}, nil, r.payloadErr(got, len(payload), err)
		}
	} else if payload, err = r.readPayload(int(h.Length)); err != nil {
		return Frame{}, nil, err
	}
	r.frames++
	return Frame{Flags: h.Flags, Payload: payload}, owned, herr
}

// readOwned fills p, the payload of an owned frame: with SetDirect, what
// the bufio.Reader holds is copied and the rest read from its source
// directly (its buffer is then empty, so the stream stays in order).
func (r *Reader) readOwned(p []byte) (int, error) {
	if r.br == nil {
		return io.ReadFull(r.r, p)
	}
	k := min(r.br.Buffered(), len(p))
	if k > 0 {
		if got, err := io.ReadFull(r.br, p[:k]); err != nil { // buffered: no read from the source
			return got, err
		}
	}
	got, err := io.ReadFull(r.direct, p[k:])
	return k + got, err
}

// readPayload reads exactly n bytes (n already validated against the limit),
// growing the buffer no faster than data arrives (see firstGrowth).
func (r *Reader) readPayload(n int) ([]byte, error) {
	if n <= cap(r.buf) {
		b := r.buf[:n]
		if got, err := io.ReadFull(r.r, b); err != nil {
			return nil, r.payloadErr(got, n, err)
		}
		return b, nil
	}
	b := r.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) { // full: double it (to n at most)
			nb := make([]byte, len(b), min(n, len(b)+max(firstGrowth, len(b))))
			copy(nb, b)
			b = nb
		}
		got, err := io.ReadFull(r.r, b[len(b):min(n, cap(b))])
		b = b[:len(b)+got]
		if err != nil {
			r.buf = b[:0]
			return nil, r.payloadErr(len(b), n, err)
		}
	}
	r.buf = b[:0]
	return b, nil
}

func (r *Reader) payloadErr(got, want int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return decodeErr("frame payload", got, ErrTruncated, fmt.Sprintf("stream ended after %d of %d bytes", got, want))
	}
	return err
}

func isUnknownFlags(err error) bool { return errors.Is(err, ErrUnknownFlags) }

// Writer writes frames to an io.Writer, building each frame in a reused
// buffer so that a frame goes out in one Write call. It is not safe for
// concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer over w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame writes one frame with the given flags and payload.
func (w *Writer) WriteFrame(flags uint16, payload []byte) error {
	w.buf = AppendFrame(w.buf[:0], flags, payload)
	return w.flush()
}

// WriteMessage encodes m as a JSON frame (flags 0) and writes it.
func (w *Writer) WriteMessage(m Message) error {
	b, err := AppendMessageFrame(w.buf[:0], m)
	if err != nil {
		return err
	}
	w.buf = b
	return w.flush()
}

// WriteRaw writes bytes that already hold one or more complete frames.
func (w *Writer) WriteRaw(frames []byte) error {
	_, err := w.w.Write(frames)
	return err
}

func (w *Writer) flush() error {
	_, err := w.w.Write(w.buf)
	if cap(w.buf) > 1<<20 { // do not pin a large buffer after a rare big frame
		w.buf = nil
	}
	return err
}
