package wire

import (
	"bytes"
	"testing"
)

func payloads(n, size int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = bytes.Repeat([]byte{byte(i)}, size)
	}
	return ps
}

// BenchmarkEncodePublishBatch64x256 encodes the hot-path publish frame into a
// reused buffer: 0 allocs/op expected.
func BenchmarkEncodePublishBatch64x256(b *testing.B) {
	ps := payloads(64, 256)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(64 * 256)
	for b.Loop() {
		var err error
		buf, err = AppendPublishBatchFrame(buf[:0], "tenant", "default", "orders", ps)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAckedPublishBatch64x256(b *testing.B) {
	ps := payloads(64, 256)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(64 * 256)
	for i := 0; b.Loop(); i++ {
		buf, _ = AppendAckedPublishBatchFrame(buf[:0], uint64(i), AckPerBatch, "tenant", "default", "orders", ps)
	}
}

// BenchmarkDecodePublishBatch64x256: names are copied into strings (3
// allocs), payloads are sub-slices.
func BenchmarkDecodePublishBatch64x256(b *testing.B) {
	f, _ := AppendPublishBatchFrame(nil, "tenant", "default", "orders", payloads(64, 256))
	var out BinaryPublishBatch
	b.ReportAllocs()
	b.SetBytes(64 * 256)
	for b.Loop() {
		if err := DecodePublishBatch(FlagBinaryPublishBatch, f[HeaderSize:], &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSharedEventBatch64x256(b *testing.B) {
	ps := payloads(64, 256)
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(64 * 256)
	for b.Loop() {
		buf = AppendEventBatchFrame(buf[:0], true, 1000, ps)
	}
}

// BenchmarkDecodeSharedEventBatch64x256 decodes into a reused batch: 0
// allocs/op expected.
func BenchmarkDecodeSharedEventBatch64x256(b *testing.B) {
	f := AppendEventBatchFrame(nil, false, 0, payloads(64, 256))
	var out BinaryEventBatch
	b.ReportAllocs()
	b.SetBytes(64 * 256)
	for b.Loop() {
		if err := DecodeEventBatch(FlagBinaryEventBatchShared, f[HeaderSize:], &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReaderFrame256(b *testing.B) {
	f := AppendEventBatchFrame(nil, false, 0, payloads(1, 256))
	src := bytes.NewReader(f)
	r := NewReader(src, 0)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(f)
		if _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeJSONPublish256(b *testing.B) {
	m := &Publish{TenantID: "tenant", Namespace: "default", Stream: "orders",
		Payload: bytes.Repeat([]byte("x"), 256), RequestID: U64(1), Ack: Ack(AckPerMessage)}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendMessageFrame(buf[:0], m)
	}
}

func BenchmarkDecodeJSONPublish256(b *testing.B) {
	m := &Publish{TenantID: "tenant", Namespace: "default", Stream: "orders",
		Payload: bytes.Repeat([]byte("x"), 256), RequestID: U64(1), Ack: Ack(AckPerMessage)}
	enc, _ := EncodeMessage(m)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}
