package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// seedFrames returns every vector frame we have (ours, and the reference's
// when present) as fuzz seeds.
func seedFrames(f *testing.F) [][]byte {
	var out [][]byte
	for _, dir := range []string{filepath.Join("testdata", "vectors"), sharedVectorsDir()} {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.hex"))
		files2, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, p := range files2 {
			// our vectors have no .hex files; take frame_hex from the JSON
			raw, _ := os.ReadFile(p)
			if i := bytes.Index(raw, []byte(`"frame_hex": "`)); i >= 0 {
				rest := raw[i+len(`"frame_hex": "`):]
				if j := bytes.IndexByte(rest, '"'); j > 0 {
					if b, err := hex.DecodeString(string(rest[:j])); err == nil {
						out = append(out, b)
					}
				}
			}
		}
		for _, p := range files {
			raw, _ := os.ReadFile(p)
			if b, err := hex.DecodeString(string(bytes.TrimSpace(raw))); err == nil {
				out = append(out, b)
			}
		}
	}
	if len(out) == 0 {
		f.Fatal("no seed vectors")
	}
	return out
}

func seedPayloads(f *testing.F, keep func(flags uint16) bool) {
	for _, fr := range seedFrames(f) {
		if fm, _, err := DecodeFrame(fr, 0); !IsFatal(err) && keep(fm.Flags) {
			f.Add(fm.Flags, fm.Payload)
		}
	}
}

// FuzzReader feeds arbitrary bytes to the frame reader: it must never panic,
// never return a payload over the limit, and stop on every fatal error.
func FuzzReader(f *testing.F) {
	for _, fr := range seedFrames(f) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 1<<16)
		for range 1000 {
			fr, err := r.ReadFrame()
			if err == io.EOF {
				return
			}
			if err != nil && IsFatal(err) {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				return
			}
			if len(fr.Payload) > 1<<16 {
				t.Fatalf("payload %d over limit", len(fr.Payload))
			}
		}
	})
}

// FuzzDecodeMessage: no panic; whatever decodes re-encodes and decodes to
// the same value.
func FuzzDecodeMessage(f *testing.F) {
	seedPayloads(f, func(fl uint16) bool { return fl == 0 })
	f.Fuzz(func(t *testing.T, _ uint16, in []byte) {
		m, err := DecodeMessage(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("error does not wrap ErrInvalidJSON: %v", err)
			}
			return
		}
		enc, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode: %v", m, err)
		}
		m2, err := DecodeMessage(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %#v -> %s -> %#v (%v)", m, enc, m2, err)
		}
	})
}

// FuzzDecodePublishBatch covers 0x0001 and 0x0009 bodies.
func FuzzDecodePublishBatch(f *testing.F) {
	seedPayloads(f, func(fl uint16) bool { return fl&FlagBinaryPublishBatch != 0 })
	f.Fuzz(func(t *testing.T, flags uint16, in []byte) {
		var b BinaryPublishBatch
		if err := DecodePublishBatch(flags, in, &b); err != nil {
			return
		}
		var out []byte
		var err error
		if b.Acked {
			out, err = AppendAckedPublishBatchFrame(nil, b.RequestID, b.AckMode, b.TenantID, b.Namespace, b.Stream, b.Payloads)
		} else {
			out, err = AppendPublishBatchFrame(nil, b.TenantID, b.Namespace, b.Stream, b.Payloads)
		}
		// Bytes after the last payload are ignored: the re-encoding is a
		// prefix of the input.
		if err != nil || !bytes.HasPrefix(in, out[HeaderSize:]) {
			t.Fatalf("re-encode differs: %v", err)
		}
	})
}

// FuzzDecodeEventBatch covers 0x0002/0x0004 with and without offsets.
func FuzzDecodeEventBatch(f *testing.F) {
	seedPayloads(f, IsEventBatch)
	f.Add(FlagBinaryEventBatchShared, []byte{0, 0, 0, 1, 0, 0, 0, 1, 'x'})
	f.Fuzz(func(t *testing.T, flags uint16, in []byte) {
		var b BinaryEventBatch
		if err := DecodeEventBatch(flags, in, &b); err != nil {
			return
		}
		var out []byte
		if b.Shared {
			out = AppendEventBatchFrame(nil, b.HasOffsets, b.BaseOffset, b.Payloads)
		} else {
			out = AppendSubEventBatchFrame(nil, b.SubscriptionID, b.HasOffsets, b.BaseOffset, b.Payloads)
		}
		if !bytes.Equal(out[HeaderSize:], in) {
			t.Fatal("re-encode differs")
		}
	})
}

// FuzzDecodePublishAck covers 0x0010.
func FuzzDecodePublishAck(f *testing.F) {
	seedPayloads(f, func(fl uint16) bool { return fl == FlagBinaryPublishAck })
	f.Fuzz(func(t *testing.T, _ uint16, in []byte) {
		a, err := DecodePublishAck(in)
		if err != nil {
			return
		}
		if a.OK && a.Message != "" {
			return // an ok ack with a message is legal on the wire; we never write one
		}
		if len(a.Message) > MaxAckMessageBytes {
			return // longer than we would write; decoding it is still fine
		}
		out := AppendPublishAckFrame(nil, a.RequestID, a.OK, a.Message)
		if !bytes.Equal(out[HeaderSize:], in) {
			t.Fatal("re-encode differs")
		}
	})
}

// FuzzDecodeQueueDeliveries covers the queue delivery extension frame.
func FuzzDecodeQueueDeliveries(f *testing.F) {
	seedPayloads(f, func(fl uint16) bool { return fl == FlagQueueDelivery })
	f.Fuzz(func(t *testing.T, _ uint16, in []byte) {
		ds, err := DecodeQueueDeliveries(in, nil)
		if err != nil {
			return
		}
		if out := AppendQueueDeliveryFrame(nil, ds); !bytes.Equal(out[HeaderSize:], in) {
			t.Fatal("re-encode differs")
		}
	})
}

// FuzzCacheBin covers binary cache frames (FlagBinaryCache) in both
// directions: no panic, and whatever decodes re-encodes to the same bytes.
func FuzzCacheBin(f *testing.F) {
	put := &CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: []byte("v"), TTLMs: U64(5), IfAbsent: true, IfVersion: U64(2)}
	get, _ := AppendCacheBinGetFrame(nil, 1, "t1", "default", "c", "k")
	putF, _ := AppendCacheBinPutFrame(nil, 2, put)
	for _, fr := range [][]byte{get, putF, AppendCacheBinValueFrame(nil, 3, 4, []byte("v")), AppendCacheBinMissFrame(nil, 5), AppendCacheBinOKFrame(nil, 6, 7)} {
		f.Add(fr[HeaderSize:])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req CacheBinRequest
		if err := DecodeCacheBinRequest(in, &req); err == nil {
			var out []byte
			if req.Op == CacheBinGet {
				out, err = AppendCacheBinGetFrame(nil, req.RequestID, string(req.TenantID), string(req.Namespace), string(req.Cache), string(req.Key))
			} else {
				m := &CachePut{TenantID: string(req.TenantID), Namespace: string(req.Namespace), Cache: string(req.Cache), Key: string(req.Key), Value: req.Value, IfAbsent: req.IfAbsent}
				if req.HasTTL {
					m.TTLMs = U64(req.TTLMs)
				}
				if req.HasIfVersion {
					m.IfVersion = U64(req.IfVersion)
				}
				out, err = AppendCacheBinPutFrame(nil, req.RequestID, m)
			}
			if err != nil || !bytes.Equal(out[HeaderSize:], in) {
				t.Fatalf("request re-encode differs: %v", err)
			}
		} else if !errors.As(err, new(*DecodeError)) {
			t.Fatalf("untyped error %T", err)
		}
		var rep CacheBinReply
		if err := DecodeCacheBinReply(in, &rep); err == nil {
			var out []byte
			switch rep.Op {
			case CacheBinValue:
				out = AppendCacheBinValueFrame(nil, rep.RequestID, rep.Version, rep.Value)
			case CacheBinMiss:
				out = AppendCacheBinMissFrame(nil, rep.RequestID)
			case CacheBinOK:
				out = AppendCacheBinOKFrame(nil, rep.RequestID, rep.Version)
			}
			if !bytes.Equal(out[HeaderSize:], in) {
				t.Fatal("reply re-encode differs")
			}
		} else if !errors.As(err, new(*DecodeError)) {
			t.Fatalf("untyped error %T", err)
		}
	})
}
