package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func header(magic uint32, version, flags uint16, length uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	b = binary.BigEndian.AppendUint16(b, version)
	b = binary.BigEndian.AppendUint16(b, flags)
	return binary.BigEndian.AppendUint32(b, length)
}

func TestReaderRejectsBadHeaders(t *testing.T) {
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"wrong magic", append(header(0x464C5832, 1, 0, 2), "{}"...), ErrInvalidMagic},
		{"wrong version", append(header(Magic, 2, 0, 2), "{}"...), ErrUnsupportedVersion},
		{"over limit", header(Magic, 1, 0, DefaultMaxFrameBytes+1), ErrFrameTooLarge},
		{"4 GiB claim", header(Magic, 1, 0, 0xFFFFFFFF), ErrFrameTooLarge},
		{"truncated header", header(Magic, 1, 0, 2)[:7], ErrTruncated},
		{"truncated payload", append(header(Magic, 1, 0, 10), "abc"...), ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.input), 0)
			_, err := r.ReadFrame()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !IsFatal(err) {
				t.Fatalf("%v must be fatal", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
		})
	}
}

func TestReaderUnknownFlagsKeepsStreamInSync(t *testing.T) {
	var in []byte
	in = append(in, header(Magic, 1, 0x0040, 3)...)
	in = append(in, "xyz"...)
	in = AppendFrame(in, 0, []byte(`{"type":"ok"}`))
	r := NewReader(bytes.NewReader(in), 0)
	f, err := r.ReadFrame()
	if !errors.Is(err, ErrUnknownFlags) || IsFatal(err) {
		t.Fatalf("err = %v, want non-fatal ErrUnknownFlags", err)
	}
	if f.Flags != 0x0040 || string(f.Payload) != "xyz" {
		t.Fatalf("frame = %+v", f)
	}
	f, err = r.ReadFrame()
	if err != nil || string(f.Payload) != `{"type":"ok"}` {
		t.Fatalf("next frame = %q, %v", f.Payload, err)
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestReaderCustomLimit(t *testing.T) {
	in := AppendFrame(nil, 0, bytes.Repeat([]byte("a"), 101))
	_, err := NewReader(bytes.NewReader(in), 100).ReadFrame()
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	f, err := NewReader(bytes.NewReader(in), 101).ReadFrame()
	if err != nil || len(f.Payload) != 101 {
		t.Fatalf("at limit: %v", err)
	}
}

// A peer that claims a large frame but sends little must not make us
// allocate the claimed size.
func TestReaderDoesNotTrustLength(t *testing.T) {
	in := append(header(Magic, 1, 0, DefaultMaxFrameBytes), make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(in), 0).ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a 100-byte body claiming 16 MiB", grew)
	}
}

// A frame's payload buffer grows with the bytes received, not with the
// length announced: a peer that announces a large payload and sends a
// little of it makes the reader hold about twice what it sent (and at
// least a small first step), so one that does so on thousands of streams
// (before auth, say) holds little memory.
func TestReaderBufferGrowsWithBytesReceived(t *testing.T) {
	for _, announced := range []int{64 << 10, DefaultMaxFrameBytes} {
		for _, sent := range []int{0, 1, 100, 5000, 60_000, 300_000} {
			sent = min(sent, announced-1)
			in := append(header(Magic, 1, 0, uint32(announced)), make([]byte, sent)...)
			r := NewReader(&oneByteAtATime{r: bytes.NewReader(in)}, announced)
			if _, err := r.ReadFrame(); !errors.Is(err, ErrTruncated) {
				t.Fatalf("announced %d, sent %d: err = %v", announced, sent, err)
			}
			if held, bound := cap(r.buf), max(2*sent, 4<<10); held > bound {
				t.Fatalf("announced %d, sent %d: the reader holds a buffer of %d bytes, want at most %d",
					announced, sent, held, bound)
			}
		}
	}
}

func TestReaderLargeFrameAcrossChunks(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 50_000) // 500 kB, several growth steps
	in := AppendFrame(nil, 0, payload)
	in = AppendFrame(in, 0, []byte("tail"))
	r := NewReader(&oneByteAtATime{r: bytes.NewReader(in)}, 0)
	f, err := r.ReadFrame()
	if err != nil || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("large frame: %v", err)
	}
	f, err = r.ReadFrame()
	if err != nil || string(f.Payload) != "tail" {
		t.Fatalf("tail frame: %q %v", f.Payload, err)
	}
}

type oneByteAtATime struct{ r io.Reader }

func (o *oneByteAtATime) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	return o.r.Read(p)
}

func TestWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteMessage(&Subscribed{SubscriptionID: 5}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(FlagBinaryPublishAck, []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessage(&ErrorMessage{Message: "bad \xff utf8"}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("invalid utf-8 accepted: %v", err)
	}
	r := NewReader(&buf, 0)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMessage(f.Payload)
	if err != nil || m.(*Subscribed).SubscriptionID != 5 {
		t.Fatalf("%v %v", m, err)
	}
	f, err = r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodePublishAck(f.Payload)
	if err != nil || !a.OK || a.RequestID != 1 {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("failed write leaked bytes: %v", err)
	}
}

func TestFlagHelpers(t *testing.T) {
	if KnownFlags != 0x003F || OriginalV1Flags != 0x0007 {
		t.Fatalf("KnownFlags %#x OriginalV1Flags %#x", KnownFlags, OriginalV1Flags)
	}
	if HasUnknownFlags(0x003F) || !HasUnknownFlags(0x0040) || !HasUnknownFlags(0x8000) {
		t.Fatal("HasUnknownFlags")
	}
	if !Supports(25, 0x0008) || Supports(25, 0x0020) || !Supports(63, 0x0029) {
		t.Fatal("Supports")
	}
	if PeerFlags(nil) != OriginalV1Flags || PeerFlags(U16(25)) != 25 {
		t.Fatal("PeerFlags")
	}
	// A reference client (no extension bits) is answered exactly KnownFlags.
	if ServerFlagsFor(25) != 63 || ServerFlagsFor(KnownFlags) != 63 {
		t.Fatal("ServerFlagsFor advertises extensions nobody asked for")
	}
	if ServerFlagsFor(KnownFlags|CapCacheExt|0x8000) != KnownFlags|CapCacheExt {
		t.Fatal("ServerFlagsFor must echo only extensions we speak")
	}
	if HasUnknownFlags(CapCacheExt) == false {
		t.Fatal("extension capability bits are never frame flags")
	}
}

func TestTruncateUTF8(t *testing.T) {
	s := strings.Repeat("é", 300) // 600 bytes
	got := TruncateUTF8(s, 511)
	if len(got) != 510 || !strings.HasPrefix(s, got) {
		t.Fatalf("len %d", len(got))
	}
	f := AppendPublishAckFrame(nil, 3, false, s)
	a, err := DecodePublishAck(f[HeaderSize:])
	if err != nil || len(a.Message) != 512 || a.OK {
		t.Fatalf("%d %v", len(a.Message), err)
	}
}

func TestReaderAllowFlags(t *testing.T) {
	in := AppendQueueDeliveryFrame(nil, []QueueDelivery{{Offset: 1, Attempt: 1, Payload: []byte("x")}})
	if _, err := NewReader(bytes.NewReader(in), 0).ReadFrame(); !errors.Is(err, ErrUnknownFlags) {
		t.Fatalf("a reader that did not allow the extension: %v", err)
	}
	r := NewReader(bytes.NewReader(in), 0)
	r.AllowFlags(FlagQueueDelivery)
	f, err := r.ReadFrame()
	if err != nil || f.Flags != FlagQueueDelivery {
		t.Fatalf("allowed extension: %+v %v", f, err)
	}
}

// Frames of an allowed extension are read without building an error: they
// arrive on hot paths (every queue delivery, every binary cache reply).
func TestReaderAllowedFlagsDoNotAllocate(t *testing.T) {
	frame := AppendQueueDeliveryFrame(nil, []QueueDelivery{{Offset: 1, Attempt: 1, Payload: []byte("x")}})
	src := bytes.NewReader(frame)
	r := NewReader(src, 0)
	r.AllowFlags(FlagQueueDelivery)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(frame)
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}
