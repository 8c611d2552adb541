package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden frames, written by hand from the layout in cachebin.go (not
// produced by the encoder). Scope t1/default/c, key k throughout.
const (
	// header: magic, version 1, flags 0x0080, length 28
	// body: op 01, id 7, names (u16 len + bytes) t1 default c k
	goldenCacheGet = "464c5831 0001 0080 0000001c  01 0000000000000007  0002 7431  0007 64656661756c74  0001 63  0001 6b"
	// op 02, id 8, scope, options 0x05 (ttl_ms, if_version), ttl 5000,
	// if_version 3, value "v2": 9+19+1+8+8+4+2 = 51 bytes
	goldenCachePutTTLIfVersion = "464c5831 0001 0080 00000033  02 0000000000000008  0002 7431  0007 64656661756c74  0001 63  0001 6b  05 0000000000001388 0000000000000003  00000002 7632"
	// op 02, id 9, scope, options 0x02 (if_absent), empty value: 33 bytes
	goldenCachePutIfAbsent = "464c5831 0001 0080 00000021  02 0000000000000009  0002 7431  0007 64656661756c74  0001 63  0001 6b  02  00000000"
	// op 81, id 7, version 4, value "v2": 23 bytes
	goldenCacheValue = "464c5831 0001 0080 00000017  81 0000000000000007  0000000000000004  00000002 7632"
	// op 81, id 7, version 4, empty value: 21 bytes
	goldenCacheValueEmpty = "464c5831 0001 0080 00000015  81 0000000000000007  0000000000000004  00000000"
	// op 82, id 7: 9 bytes
	goldenCacheMiss = "464c5831 0001 0080 00000009  82 0000000000000007"
	// op 83, id 8, version 4: 17 bytes
	goldenCacheOK = "464c5831 0001 0080 00000011  83 0000000000000008  0000000000000004"
)

func testPut() *CachePut {
	return &CachePut{TenantID: "t1", Namespace: "default", Cache: "c", Key: "k", Value: []byte("v2")}
}

func TestCacheBinGolden(t *testing.T) {
	mustEq := func(name string, got []byte, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := unhex(t, want); !bytes.Equal(got, w) {
			t.Fatalf("%s:\n got %x\nwant %x", name, got, w)
		}
	}
	f, err := AppendCacheBinGetFrame(nil, 7, "t1", "default", "c", "k")
	mustEq("get", f, err, goldenCacheGet)
	p := testPut()
	p.TTLMs, p.IfVersion = U64(5000), U64(3)
	p.RequestID = U64(99) // ignored: the id argument wins
	f, err = AppendCacheBinPutFrame(nil, 8, p)
	mustEq("put ttl if_version", f, err, goldenCachePutTTLIfVersion)
	p = testPut()
	p.IfAbsent, p.Value = true, []byte{}
	f, err = AppendCacheBinPutFrame(nil, 9, p)
	mustEq("put if_absent", f, err, goldenCachePutIfAbsent)
	mustEq("value", AppendCacheBinValueFrame(nil, 7, 4, []byte("v2")), nil, goldenCacheValue)
	mustEq("value empty", AppendCacheBinValueFrame(nil, 7, 4, nil), nil, goldenCacheValueEmpty)
	mustEq("miss", AppendCacheBinMissFrame(nil, 7), nil, goldenCacheMiss)
	mustEq("ok", AppendCacheBinOKFrame(nil, 8, 4), nil, goldenCacheOK)

	// And the goldens decode to what they say.
	var req CacheBinRequest
	if err := DecodeCacheBinRequest(unhex(t, goldenCachePutTTLIfVersion)[HeaderSize:], &req); err != nil {
		t.Fatal(err)
	}
	want := CacheBinRequest{Op: CacheBinPut, RequestID: 8, TenantID: []byte("t1"), Namespace: []byte("default"), Cache: []byte("c"), Key: []byte("k"),
		Value: []byte("v2"), HasTTL: true, TTLMs: 5000, HasIfVersion: true, IfVersion: 3}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("decoded %+v\nwant %+v", req, want)
	}
	var rep CacheBinReply
	if err := DecodeCacheBinReply(unhex(t, goldenCacheValueEmpty)[HeaderSize:], &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Op != CacheBinValue || rep.RequestID != 7 || rep.Version != 4 || rep.Value == nil || len(rep.Value) != 0 {
		t.Fatalf("empty hit decoded as %+v", rep)
	}
}

func TestCacheBinRoundTrip(t *testing.T) {
	// Frames go after existing bytes: encoders append.
	prefix := []byte("xyz")
	get, err := AppendCacheBinGetFrame(prefix, 1<<63+5, "tenant", "ns", "cache-é", strings.Repeat("k", 0xFFFF))
	if err != nil {
		t.Fatal(err)
	}
	// An extension flag: DecodeFrame reports it as unknown (not fatal).
	fr, rest, err := DecodeFrame(get[len(prefix):], 0)
	if !IsFatal(err) {
		err = nil
	}
	if err != nil || len(rest) != 0 || fr.Flags != FlagBinaryCache {
		t.Fatalf("frame: %v %d %#x", err, len(rest), fr.Flags)
	}
	var req CacheBinRequest
	if err := DecodeCacheBinRequest(fr.Payload, &req); err != nil {
		t.Fatal(err)
	}
	if req.Op != CacheBinGet || req.RequestID != 1<<63+5 || string(req.TenantID) != "tenant" || string(req.Namespace) != "ns" ||
		string(req.Cache) != "cache-é" || len(req.Key) != 0xFFFF || req.Value != nil {
		t.Fatalf("get decoded as op %v id %d %q %q %q", req.Op, req.RequestID, req.TenantID, req.Namespace, req.Cache)
	}
	for _, mod := range []func(*CachePut){
		func(*CachePut) {},
		func(m *CachePut) { m.TTLMs = U64(0) },
		func(m *CachePut) { m.IfAbsent = true },
		func(m *CachePut) { m.IfVersion = U64(0) },
		func(m *CachePut) {
			m.TTLMs, m.IfAbsent, m.IfVersion, m.Value = U64(^uint64(0)), true, U64(77), bytes.Repeat([]byte{0}, 70000)
		},
	} {
		m := testPut()
		mod(m)
		f, err := AppendCacheBinPutFrame(nil, 3, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeCacheBinRequest(f[HeaderSize:], &req); err != nil {
			t.Fatal(err)
		}
		got := &CachePut{TenantID: string(req.TenantID), Namespace: string(req.Namespace), Cache: string(req.Cache), Key: string(req.Key),
			Value: req.Value, IfAbsent: req.IfAbsent}
		if req.HasTTL {
			got.TTLMs = U64(req.TTLMs)
		}
		if req.HasIfVersion {
			got.IfVersion = U64(req.IfVersion)
		}
		if req.Op != CacheBinPut || req.RequestID != 3 || !reflect.DeepEqual(got, m) {
			t.Fatalf("put round trip: %+v -> %+v", m, got)
		}
	}
	var rep CacheBinReply
	for _, c := range []struct {
		frame []byte
		want  CacheBinReply
	}{
		{AppendCacheBinValueFrame(nil, 5, 6, []byte("hello")), CacheBinReply{Op: CacheBinValue, RequestID: 5, Version: 6, Value: []byte("hello")}},
		{AppendCacheBinMissFrame(nil, 5), CacheBinReply{Op: CacheBinMiss, RequestID: 5}},
		{AppendCacheBinOKFrame(nil, 5, 9), CacheBinReply{Op: CacheBinOK, RequestID: 5, Version: 9}},
	} {
		if err := DecodeCacheBinReply(c.frame[HeaderSize:], &rep); err != nil || !reflect.DeepEqual(rep, c.want) {
			t.Fatalf("reply round trip: %+v (%v), want %+v", rep, err, c.want)
		}
	}
}

func TestCacheBinEncodeErrors(t *testing.T) {
	dst := []byte("keep")
	for name, enc := range map[string]func() ([]byte, error){
		"get long key": func() ([]byte, error) {
			return AppendCacheBinGetFrame(dst, 1, "t", "n", "c", strings.Repeat("k", 0x10000))
		},
		"get invalid utf8": func() ([]byte, error) { return AppendCacheBinGetFrame(dst, 1, "t", "n", "c", "\xff") },
		"put invalid utf8": func() ([]byte, error) {
			m := testPut()
			m.Namespace = "\xfe"
			return AppendCacheBinPutFrame(dst, 1, m)
		},
	} {
		out, err := enc()
		if err == nil || string(out) != "keep" {
			t.Errorf("%s: err %v, dst %q", name, err, out)
		}
	}
}

func TestCacheBinMalformed(t *testing.T) {
	body := func(s string) []byte { return unhex(t, s)[HeaderSize:] }
	get := body(goldenCacheGet)
	put := body(goldenCachePutTTLIfVersion)
	with := func(b []byte, at int, v byte) []byte {
		c := bytes.Clone(b)
		c[at] = v
		return c
	}
	optsAt := len(put) - 8 - 8 - 4 - 2 - 1
	value := body(goldenCacheValue)
	ok := body(goldenCacheOK)
	request := func(b []byte) error { return DecodeCacheBinRequest(b, new(CacheBinRequest)) }
	reply := func(b []byte) error { return DecodeCacheBinReply(b, new(CacheBinReply)) }
	cases := []struct {
		name   string
		decode func([]byte) error
		b      []byte
		want   error
	}{
		{"request empty", request, nil, ErrTruncated},
		{"op only", request, get[:1], ErrTruncated},
		{"request short id", request, get[:5], ErrTruncated},
		{"no scope", request, get[:9], ErrTruncated},
		{"cut key", request, get[:len(get)-1], ErrTruncated},
		{"get trailing", request, append(bytes.Clone(get), 0), ErrTrailingBytes},
		{"unknown request op", request, with(get, 0, 0x03), ErrUnknownCacheOp},
		{"op zero", request, with(get, 0, 0), ErrUnknownCacheOp},
		{"reply op from a client", request, with(get, 0, byte(CacheBinValue)), ErrUnknownCacheOp},
		{"invalid utf8 tenant", request, with(get, 11, 0xff), ErrInvalidUTF8},
		{"name longer than body", request, with(get, 10, 0x7f), ErrTruncated},
		{"unknown option bit", request, with(put, optsAt, 0x08), ErrUnknownOptions},
		{"high option bit", request, with(put, optsAt, 0x85), ErrUnknownOptions},
		{"put without options", request, put[:optsAt], ErrTruncated},
		{"put cut ttl", request, put[:optsAt+4], ErrTruncated},
		{"put cut value length", request, put[:len(put)-4], ErrTruncated},
		{"put value longer than body", request, put[:len(put)-1], ErrTruncated},
		{"put trailing", request, append(bytes.Clone(put), 0), ErrTrailingBytes},
		{"put options say no ttl", request, with(put, optsAt, 0x04), ErrTrailingBytes}, // the ttl reads as if_version, an empty value, then 10 bytes left
		{"reply empty", reply, nil, ErrTruncated},
		{"reply short id", reply, value[:8], ErrTruncated},
		{"value no version", reply, value[:9], ErrTruncated},
		{"value no length", reply, value[:17], ErrTruncated},
		{"value cut", reply, value[:len(value)-1], ErrTruncated},
		{"value trailing", reply, append(bytes.Clone(value), 1), ErrTrailingBytes},
		{"ok short", reply, ok[:len(ok)-1], ErrTruncated},
		{"ok trailing", reply, append(bytes.Clone(ok), 1), ErrTrailingBytes},
		{"miss trailing", reply, append(body(goldenCacheMiss), 1), ErrTrailingBytes},
		{"request op from a broker", reply, with(value, 0, byte(CacheBinGet)), ErrUnknownCacheOp},
		{"unknown reply op", reply, with(value, 0, 0x84), ErrUnknownCacheOp},
	}
	for _, c := range cases {
		err := c.decode(c.b)
		var de *DecodeError
		if !errors.Is(err, c.want) || !errors.As(err, &de) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

// The hot paths allocate nothing: encoders into a buffer with room, and
// decoders of get, value and ok.
func TestCacheBinZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, 4096)
	put := testPut()
	put.TTLMs = U64(1000)
	value := make([]byte, 256)
	getF, _ := AppendCacheBinGetFrame(nil, 1, "t1", "default", "c", "k")
	putF, _ := AppendCacheBinPutFrame(nil, 1, put)
	valF := AppendCacheBinValueFrame(nil, 1, 2, value)
	okF := AppendCacheBinOKFrame(nil, 1, 2)
	var req CacheBinRequest
	var rep CacheBinReply
	for name, f := range map[string]func(){
		"encode get":   func() { buf, _ = AppendCacheBinGetFrame(buf[:0], 1, "t1", "default", "c", "k") },
		"encode put":   func() { buf, _ = AppendCacheBinPutFrame(buf[:0], 1, put) },
		"encode value": func() { buf = AppendCacheBinValueFrame(buf[:0], 1, 2, value) },
		"encode miss":  func() { buf = AppendCacheBinMissFrame(buf[:0], 1) },
		"encode ok":    func() { buf = AppendCacheBinOKFrame(buf[:0], 1, 2) },
		"decode get":   func() { _ = DecodeCacheBinRequest(getF[HeaderSize:], &req) },
		"decode put":   func() { _ = DecodeCacheBinRequest(putF[HeaderSize:], &req) },
		"decode value": func() { _ = DecodeCacheBinReply(valF[HeaderSize:], &rep) },
		"decode ok":    func() { _ = DecodeCacheBinReply(okF[HeaderSize:], &rep) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs", name, n)
		}
	}
}

var benchPut = &CachePut{TenantID: "tenant", Namespace: "default", Cache: "bench", Key: "key-123", Value: make([]byte, 256), TTLMs: U64(60000)}

// BenchmarkCacheBinEncode: each frame into a reused buffer (0 allocs).
func BenchmarkCacheBinEncode(b *testing.B) {
	var buf []byte
	for _, c := range []struct {
		name  string
		bytes int64
		enc   func(id uint64)
	}{
		{"get", 0, func(id uint64) { buf, _ = AppendCacheBinGetFrame(buf[:0], id, "tenant", "default", "bench", "key-123") }},
		{"put256", 256, func(id uint64) { buf, _ = AppendCacheBinPutFrame(buf[:0], id, benchPut) }},
		{"value256", 256, func(id uint64) { buf = AppendCacheBinValueFrame(buf[:0], id, 7, benchPut.Value) }},
		{"ok", 0, func(id uint64) { buf = AppendCacheBinOKFrame(buf[:0], id, 7) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(c.bytes)
			for i := uint64(0); b.Loop(); i++ {
				c.enc(i)
			}
		})
	}
}

// BenchmarkCacheBinDecode: views of the frame, 0 allocs.
func BenchmarkCacheBinDecode(b *testing.B) {
	get, _ := AppendCacheBinGetFrame(nil, 1, "tenant", "default", "bench", "key-123")
	put, _ := AppendCacheBinPutFrame(nil, 1, benchPut)
	var req CacheBinRequest
	var rep CacheBinReply
	for _, c := range []struct {
		name   string
		frame  []byte
		decode func([]byte) error
	}{
		{"get", get, func(p []byte) error { return DecodeCacheBinRequest(p, &req) }},
		{"put256", put, func(p []byte) error { return DecodeCacheBinRequest(p, &req) }},
		{"value256", AppendCacheBinValueFrame(nil, 1, 7, benchPut.Value), func(p []byte) error { return DecodeCacheBinReply(p, &rep) }},
		{"ok", AppendCacheBinOKFrame(nil, 1, 7), func(p []byte) error { return DecodeCacheBinReply(p, &rep) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.frame)))
			for b.Loop() {
				if err := c.decode(c.frame[HeaderSize:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// For comparison: the JSON messages the binary frames replace.
func BenchmarkCacheBinJSONBaselineValue256(b *testing.B) {
	m := &CacheValue{TenantID: "tenant", Namespace: "default", Cache: "bench", Key: "key-123", Value: make([]byte, 256), RequestID: U64(1), Version: U64(7)}
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(256)
	for b.Loop() {
		buf, _ = AppendMessageFrame(buf[:0], m)
		if _, err := DecodeMessage(buf[HeaderSize:]); err != nil {
			b.Fatal(err)
		}
	}
}

// FlagBinaryCache is an extension flag: unknown to a plain Reader, accepted
// by one that allows it.
func TestCacheBinFlagGated(t *testing.T) {
	if !HasUnknownFlags(FlagBinaryCache) || ExtensionCaps&CapCacheBin == 0 {
		t.Fatal("FlagBinaryCache must be outside KnownFlags and CapCacheBin an extension")
	}
	if ServerFlagsFor(KnownFlags) != KnownFlags || ServerFlagsFor(KnownFlags|CapCacheBin)&CapCacheBin == 0 {
		t.Fatal("CapCacheBin must be granted exactly to clients that offer it")
	}
	frame := unhex(t, goldenCacheMiss)
	r := NewReader(bytes.NewReader(frame), 0)
	if _, err := r.ReadFrame(); !errors.Is(err, ErrUnknownFlags) {
		t.Fatalf("plain reader: %v", err)
	}
	r = NewReader(bytes.NewReader(frame), 0)
	r.AllowFlags(FlagBinaryCache)
	if f, err := r.ReadFrame(); err != nil || f.Flags != FlagBinaryCache {
		t.Fatalf("allowing reader: %v", err)
	}
}
