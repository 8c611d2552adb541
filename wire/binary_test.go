package wire

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestBinaryDecodeErrors(t *testing.T) {
	good, _ := AppendPublishBatchFrame(nil, "t", "n", "s", [][]byte{[]byte("p")})
	body := good[HeaderSize:]
	badUTF8 := append([]byte{0, 2, 0xff, 0xfe}, body[3:]...)
	hugeCount := binary.BigEndian.AppendUint32([]byte{0, 1, 't', 0, 1, 'n', 0, 1, 's'}, 1_000_000_000)
	cases := []struct {
		name  string
		flags uint16
		body  []byte
		want  error
	}{
		{"empty", FlagBinaryPublishBatch, nil, ErrTruncated},
		{"cut name", FlagBinaryPublishBatch, body[:2], ErrTruncated},
		{"cut payload", FlagBinaryPublishBatch, body[:len(body)-1], ErrTruncated},
		{"invalid utf8", FlagBinaryPublishBatch, badUTF8, ErrInvalidUTF8},
		{"count beyond bytes", FlagBinaryPublishBatch, hugeCount, ErrCountTooLarge},
		{"acked short prefix", FlagBinaryPublishBatch | FlagBinaryPublishAcked, []byte{0, 0, 0, 0, 0, 0, 0, 1}, ErrTruncated},
		{"acked mode 0", FlagBinaryPublishBatch | FlagBinaryPublishAcked, append(make([]byte, 8), 0), ErrInvalidAckMode},
		{"acked mode 3", FlagBinaryPublishBatch | FlagBinaryPublishAcked, append(make([]byte, 8), 3), ErrInvalidAckMode},
		{"wrong flags", FlagBinaryEventBatchShared, body, ErrWrongFlags},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out BinaryPublishBatch
			if err := DecodePublishBatch(c.flags, c.body, &out); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// The reference broker reads a publish batch body up to its last payload
// and ignores what follows; so do we.
func TestPublishBatchIgnoresTrailingBytes(t *testing.T) {
	good, _ := AppendPublishBatchFrame(nil, "t", "n", "s", [][]byte{[]byte("p")})
	for _, flags := range []uint16{FlagBinaryPublishBatch, FlagBinaryPublishBatch | FlagBinaryPublishAcked} {
		body := append([]byte{}, good[HeaderSize:]...)
		if flags&FlagBinaryPublishAcked != 0 {
			body = append([]byte{0, 0, 0, 0, 0, 0, 0, 7, byte(AckPerBatch)}, body...)
		}
		body = append(body, 0xde, 0xad)
		var out BinaryPublishBatch
		if err := DecodePublishBatch(flags, body, &out); err != nil {
			t.Fatalf("flags %#x: %v", flags, err)
		}
		if out.TenantID != "t" || out.Namespace != "n" || out.Stream != "s" || len(out.Payloads) != 1 || string(out.Payloads[0]) != "p" {
			t.Fatalf("flags %#x: decoded %+v", flags, out)
		}
	}
}

func TestPublishAckDecodeErrors(t *testing.T) {
	ok := AppendPublishAckFrame(nil, 7, true, "")[HeaderSize:]
	bad := append([]byte{2}, ok[1:]...)
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"status 2", bad, ErrInvalidAckStatus},
		{"short", ok[:5], ErrTruncated},
		{"msg longer than body", []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9, 'x'}, ErrTruncated},
		{"trailing", append(append([]byte{}, ok...), 1), ErrTrailingBytes},
		{"msg invalid utf8", []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0xff}, ErrInvalidUTF8},
	} {
		if _, err := DecodePublishAck(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestEventBatchDecodeErrors(t *testing.T) {
	f := AppendSubEventBatchFrame(nil, 3, true, 10, [][]byte{[]byte("a")})
	var out BinaryEventBatch
	if err := DecodeEventBatch(FlagBinaryEventBatch|FlagEventBatchOffsets, f[HeaderSize:], &out); err != nil {
		t.Fatal(err)
	}
	if out.SubscriptionID != 3 || out.BaseOffset != 10 || string(out.Payloads[0]) != "a" {
		t.Fatalf("%+v", out)
	}
	// The same bytes read without the offsets modifier leave trailing bytes
	// or a bad count, never a silent misread.
	if err := DecodeEventBatch(FlagBinaryEventBatch, f[HeaderSize:], &out); err == nil {
		t.Fatal("misread accepted")
	}
	if err := DecodeEventBatch(FlagBinaryEventBatchShared, []byte{0xff, 0xff, 0xff, 0xff}, &out); !errors.Is(err, ErrCountTooLarge) {
		t.Fatalf("huge count: %v", err)
	}
	if err := DecodeEventBatch(FlagBinaryPublishBatch, nil, &out); !errors.Is(err, ErrWrongFlags) {
		t.Fatalf("wrong flags: %v", err)
	}
}

func TestBinaryEncodeErrors(t *testing.T) {
	long := strings.Repeat("x", 0x10000)
	if _, err := AppendPublishBatchFrame(nil, long, "n", "s", nil); !errors.Is(err, ErrFieldTooLong) {
		t.Fatalf("long name: %v", err)
	}
	if _, err := AppendPublishBatchFrame(nil, "t", "\xff", "s", nil); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("bad utf8: %v", err)
	}
	if _, err := AppendAckedPublishBatchFrame(nil, 1, AckNone, "t", "n", "s", nil); !errors.Is(err, ErrInvalidAckMode) {
		t.Fatalf("ack none: %v", err)
	}
	dst := []byte("keep")
	out, err := AppendPublishBatchFrame(dst, "t", "\xff", "s", nil)
	if err == nil || string(out) != "keep" {
		t.Fatalf("failed encode must leave dst intact: %q", out)
	}
}

// Decoding publish frames into a reused BinaryPublishBatch keeps the names
// decoded last time when they are unchanged: no allocation per frame.
func TestDecodePublishBatchReusesNames(t *testing.T) {
	f, err := AppendAckedPublishBatchFrame(nil, 1, AckPerBatch, "t1", "default", "demo", [][]byte{[]byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	body := f[HeaderSize:]
	var out BinaryPublishBatch
	if err := DecodePublishBatch(FlagBinaryPublishBatch|FlagBinaryPublishAcked, body, &out); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = DecodePublishBatch(FlagBinaryPublishBatch|FlagBinaryPublishAcked, body, &out)
	}); n != 0 {
		t.Errorf("%v allocations per decode of the same stream's frame, want 0", n)
	}
	g, _ := AppendAckedPublishBatchFrame(nil, 2, AckPerBatch, "t1", "default", "other", [][]byte{[]byte("y")})
	if err := DecodePublishBatch(FlagBinaryPublishBatch|FlagBinaryPublishAcked, g[HeaderSize:], &out); err != nil {
		t.Fatal(err)
	}
	if out.TenantID != "t1" || out.Namespace != "default" || out.Stream != "other" || string(out.Payloads[0]) != "y" || out.RequestID != 2 {
		t.Fatalf("after a frame for another stream: %+v", out)
	}
}
