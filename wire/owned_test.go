package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns at most n bytes per Read, as a QUIC stream returns
// what has arrived.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestReadFrameOwned reads a mix of frames through a bufio.Reader, with
// and without SetDirect, and checks that owned payloads are fresh buffers
// with the headroom in front, other frames come from the reused buffer,
// and the stream stays in sync whatever the read sizes.
func TestReadFrameOwned(t *testing.T) {
	pub, err := AppendPublishBatchFrame(nil, "t", "ns", "s", payloads(64, 256))
	if err != nil {
		t.Fatal(err)
	}
	small, _ := AppendPublishBatchFrame(nil, "t", "ns", "s", payloads(1, 10))
	json, _ := AppendMessageFrame(nil, &OK{})
	huge, _ := AppendPublishBatchFrame(nil, "t", "ns", "s", payloads(2, MaxOwnedFrame))
	var stream []byte
	want := [][]byte{pub, json, small, pub, huge, small, json}
	for _, f := range want {
		stream = append(stream, f...)
	}
	for _, direct := range []bool{false, true} {
		for _, chunk := range []int{1, 7, 1000, 1 << 20} {
			src := &chunkReader{r: bytes.NewReader(stream), n: chunk}
			r := NewReader(bufio.NewReaderSize(src, 4096), 0)
			if direct {
				r.SetDirect(src)
			}
			var kept [][]byte // owned payloads must survive later reads
			var keptWant [][]byte
			for i, w := range want {
				f, owned, err := r.ReadFrameOwned(FlagBinaryPublishBatch, 20)
				if err != nil {
					t.Fatalf("direct=%v chunk=%d frame %d: %v", direct, chunk, i, err)
				}
				if !bytes.Equal(f.Payload, w[HeaderSize:]) {
					t.Fatalf("direct=%v chunk=%d frame %d: payload differs", direct, chunk, i)
				}
				isPub := w[7]&byte(FlagBinaryPublishBatch) != 0
				fits := 20+len(w)-HeaderSize <= MaxOwnedFrame
				if (owned != nil) != (isPub && fits) {
					t.Fatalf("direct=%v chunk=%d frame %d: owned=%v, want %v", direct, chunk, i, owned != nil, isPub && fits)
				}
				if owned != nil {
					if len(owned) != 20+len(f.Payload) || &owned[20] != &f.Payload[0] {
						t.Fatalf("frame %d: payload is not owned[20:]", i)
					}
					kept, keptWant = append(kept, f.Payload), append(keptWant, w[HeaderSize:])
				}
			}
			for i := range kept {
				if !bytes.Equal(kept[i], keptWant[i]) {
					t.Fatalf("direct=%v chunk=%d: owned payload %d changed by later reads", direct, chunk, i)
				}
			}
			if _, _, err := r.ReadFrameOwned(FlagBinaryPublishBatch, 20); err != io.EOF {
				t.Fatalf("direct=%v chunk=%d: at the end got %v, want io.EOF", direct, chunk, err)
			}
		}
	}
}

// TestReadFrameOwnedTruncated: a stream that ends inside an owned payload
// is ErrTruncated, as with ReadFrame.
func TestReadFrameOwnedTruncated(t *testing.T) {
	pub, _ := AppendPublishBatchFrame(nil, "t", "ns", "s", payloads(4, 100))
	for _, direct := range []bool{false, true} {
		src := bytes.NewReader(pub[:len(pub)-10])
		r := NewReader(bufio.NewReaderSize(src, 64), 0)
		if direct {
			r.SetDirect(src)
		}
		if _, _, err := r.ReadFrameOwned(FlagBinaryPublishBatch, 20); !errors.Is(err, ErrTruncated) {
			t.Fatalf("direct=%v: got %v, want ErrTruncated", direct, err)
		}
	}
}

// TestPrefixEventBatchFrame: the frame made in place from a publish body
// is byte for byte the one AppendEventBatchFrame encodes.
func TestPrefixEventBatchFrame(t *testing.T) {
	ps := payloads(5, 33)
	pub, _ := AppendPublishBatchFrame(nil, "tenant", "ns", "stream", ps)
	var batch BinaryPublishBatch
	if err := DecodePublishBatchBody(pub[HeaderSize:], &batch); err != nil {
		t.Fatal(err)
	}
	for _, withOffsets := range []bool{false, true} {
		buf := append([]byte(nil), pub...)
		at := HeaderSize + batch.PayloadsAt
		if at < EventBatchPrefixSize(withOffsets) {
			t.Fatalf("no room: at %d", at)
		}
		got := PrefixEventBatchFrame(buf, at, withOffsets, 77)
		want := AppendEventBatchFrame(nil, withOffsets, 77, ps)
		if !bytes.Equal(got, want) {
			t.Fatalf("withOffsets=%v:\n got %x\nwant %x", withOffsets, got, want)
		}
	}
}

// BenchmarkReaderOwned64x256 reads 64×256 B publish frames into buffers of
// their own through a 16 KiB bufio.Reader over a source returning 1,200
// bytes a read (a QUIC stream's packets), with and without SetDirect.
func BenchmarkReaderOwned64x256(b *testing.B) {
	pub, _ := AppendPublishBatchFrame(nil, "tenant", "default", "bench", payloads(64, 256))
	stream := bytes.Repeat(pub, 64)
	for _, direct := range []bool{false, true} {
		name := "bufio"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			src := bytes.NewReader(stream)
			cr := &chunkReader{r: src, n: 1200}
			br := bufio.NewReaderSize(cr, 16<<10)
			b.SetBytes(int64(len(pub)))
			b.ReportAllocs()
			for b.Loop() {
				if src.Len() == 0 {
					src.Reset(stream)
					br.Reset(cr)
				}
				r := NewReader(br, 0)
				if direct {
					r.SetDirect(cr)
				}
				if _, _, err := r.ReadFrameOwned(FlagBinaryPublishBatch, 20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
