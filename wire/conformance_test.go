package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Conformance of the reference's message types with the serde behaviour
// the reference inventory describes (its §2.4): every field present, each
// optional one absent or null, each required one missing or null,
// duplicates, unknown members, integer edge cases and string escapes.

// member is one JSON member of a canonical reference message.
type member struct {
	name, value string
	required    bool
	nullable    bool   // a required field that may be null (cache_value.value)
	kind        string // "u64", "u16", "str", "b64", "b64list", "ack", "start", "reason"
}

// refMessage is one reference message type with every field set, in the
// reference's declaration order.
type refMessage struct {
	typ     string
	members []member
}

func req(name, value, kind string) member {
	return member{name: name, value: value, kind: kind, required: true}
}
func opt(name, value, kind string) member { return member{name: name, value: value, kind: kind} }

var (
	refScope3 = []member{req("tenant_id", `"t1"`, "str"), req("namespace", `"default"`, "str"), req("stream", `"demo"`, "str")}
	refScope4 = []member{req("tenant_id", `"t1"`, "str"), req("namespace", `"default"`, "str"),
		req("cache", `"primary"`, "str"), req("key", `"demo-key"`, "str")}
)

func with(base []member, more ...member) []member { return append(slices.Clone(base), more...) }

// refMessages lists every message type of the reference (§2.4).
var refMessages = []refMessage{
	{"auth", []member{req("tenant_id", `"t1"`, "str"), req("token", `"demo-token"`, "str"), opt("client_flags", `63`, "u16")}},
	{"auth_ok", []member{req("server_flags", `63`, "u16")}},
	{"publish", with(refScope3, req("payload", `"aGVsbG8="`, "b64"), opt("request_id", `7`, "u64"), opt("ack", `"per_message"`, "ack"))},
	{"publish_batch", with(refScope3, req("payloads", `["YQ==",""]`, "b64list"), opt("request_id", `7`, "u64"), opt("ack", `"per_batch"`, "ack"))},
	{"subscribe", with(refScope3, opt("subscription_id", `9`, "u64"), opt("start", `{"offset":100}`, "start"))},
	{"subscribed", []member{req("subscription_id", `1`, "u64")}},
	{"event_stream_hello", []member{req("subscription_id", `1`, "u64")}},
	{"event", with(refScope3, req("payload", `"d29ybGQ="`, "b64"), opt("offset", `5`, "u64"))},
	{"event_batch", with(refScope3, req("payloads", `["YQ==","YmM="]`, "b64list"), opt("base_offset", `5`, "u64"))},
	{"cache_put", with(refScope4, req("value", `"Y2FjaGVk"`, "b64"), opt("request_id", `3`, "u64"), opt("ttl_ms", `1000`, "u64"))},
	{"cache_get", with(refScope4, opt("request_id", `4`, "u64"))},
	{"cache_value", with(refScope4, member{name: "value", value: `"Y2FjaGVk"`, kind: "b64", required: true, nullable: true},
		opt("request_id", `4`, "u64"))},
	{"cache_ok", []member{req("request_id", `3`, "u64")}},
	{"publish_ok", []member{req("request_id", `42`, "u64")}},
	{"publish_error", []member{req("request_id", `42`, "u64"), req("message", `"stream not found"`, "str")}},
	{"ok", nil},
	{"error", []member{req("message", `"oops"`, "str")}},
	{"subscribe_cursor_error", []member{req("reason", `"too_old"`, "reason"), req("requested", `3`, "u64"), req("available", `10`, "u64")}},
}

// alwaysWritten are the optional fields serde writes as null when absent
// (no skip_serializing_if in the reference).
var alwaysWritten = map[string]bool{"cache_put.ttl_ms": true}

// object builds {"type":typ, members...} compactly, in order.
func object(typ string, ms []member) string {
	var b strings.Builder
	b.WriteString(`{"type":"` + typ + `"`)
	for _, m := range ms {
		b.WriteString(`,"` + m.name + `":` + m.value)
	}
	b.WriteString("}")
	return b.String()
}

func without(ms []member, i int) []member { return slices.Delete(slices.Clone(ms), i, i+1) }

func replaced(ms []member, i int, value string) []member {
	out := slices.Clone(ms)
	out[i].value = value
	return out
}

func encodeString(t *testing.T, m Message) string {
	t.Helper()
	b, err := EncodeMessage(m)
	if err != nil {
		t.Fatalf("encode %#v: %v", m, err)
	}
	return string(b)
}

// Every field set: decodes, and encodes back to the same bytes (field order
// with all optional fields present); the members in any order, or with
// unknown members among them, decode to the same message.
func TestConformanceAllFields(t *testing.T) {
	for _, rm := range refMessages {
		t.Run(rm.typ, func(t *testing.T) {
			in := object(rm.typ, rm.members)
			m, err := DecodeMessage([]byte(in))
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if got := encodeString(t, m); got != in {
				t.Fatalf("re-encode:\n got %s\nwant %s", got, in)
			}
			// Reversed, "type" last, whitespace, unknown members of every
			// JSON kind: the same message (serde ignores unknown fields).
			var b strings.Builder
			b.WriteString(" {\n")
			b.WriteString(`"zz_unknown":{"a":[1,-2,3.5e10,null,true,"\u00e9\ud83e\udd80"]}, "Type":"ok", "TENANT_ID":1,`)
			for _, mb := range slices.Backward(rm.members) {
				b.WriteString(" \"" + mb.name + "\" : " + mb.value + " ,\t")
			}
			b.WriteString("\"type\":\"" + rm.typ + "\"\r\n} \n")
			m2, err := DecodeMessage([]byte(b.String()))
			if err != nil {
				t.Fatalf("%s: %v", b.String(), err)
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("reordered decode differs:\n%#v\n%#v", m, m2)
			}
		})
	}
}

// Each field absent, null or duplicated.
func TestConformancePresence(t *testing.T) {
	for _, rm := range refMessages {
		for i, mb := range rm.members {
			t.Run(rm.typ+"."+mb.name, func(t *testing.T) {
				absent := object(rm.typ, without(rm.members, i))
				null := object(rm.typ, replaced(rm.members, i, "null"))
				dup := object(rm.typ, append(slices.Clone(rm.members), mb))
				if _, err := DecodeMessage([]byte(dup)); !errors.Is(err, ErrInvalidJSON) {
					t.Errorf("duplicate %s accepted: %v", mb.name, err)
				}
				ma, errAbsent := DecodeMessage([]byte(absent))
				mn, errNull := DecodeMessage([]byte(null))
				if mb.required {
					if errAbsent == nil {
						t.Errorf("missing required %s accepted", mb.name)
					}
					if (errNull == nil) != mb.nullable {
						t.Errorf("required %s null: err %v, nullable %v", mb.name, errNull, mb.nullable)
					}
					if mb.nullable && errNull == nil {
						if got := encodeString(t, mn); got != null {
							t.Errorf("null %s re-encodes as %s, want %s", mb.name, got, null)
						}
					}
					return
				}
				if errAbsent != nil || errNull != nil {
					t.Fatalf("optional %s: absent %v, null %v", mb.name, errAbsent, errNull)
				}
				if !reflect.DeepEqual(ma, mn) {
					t.Errorf("optional %s: absent %#v and null %#v differ", mb.name, ma, mn)
				}
				want := absent // skip_serializing_if = "Option::is_none"
				if alwaysWritten[rm.typ+"."+mb.name] {
					want = null
				}
				if got := encodeString(t, ma); got != want {
					t.Errorf("absent %s encodes as\n %s\nwant %s", mb.name, got, want)
				}
			})
		}
	}
}

// Integers: u64 max is a number; negatives, floats, exponents, -0, leading
// zeros, strings, booleans and overflow are refused (serde_json buffers
// them as i64/f64/string content, which a u64/u16 field does not take).
func TestConformanceIntegers(t *testing.T) {
	bad := []string{`-1`, `-0`, `1.0`, `1e2`, `1E2`, `0.5`, `01`, `"1"`, `true`, `[1]`, `{}`, `18446744073709551616`, `99999999999999999999999`}
	for _, rm := range refMessages {
		for i, mb := range rm.members {
			if mb.kind != "u64" && mb.kind != "u16" {
				continue
			}
			t.Run(rm.typ+"."+mb.name, func(t *testing.T) {
				top, over := `18446744073709551615`, `18446744073709551616`
				if mb.kind == "u16" {
					top, over = `65535`, `65536`
				}
				for _, v := range append(slices.Clone(bad), over) {
					in := object(rm.typ, replaced(rm.members, i, v))
					if m, err := DecodeMessage([]byte(in)); !errors.Is(err, ErrInvalidJSON) {
						t.Errorf("%s accepted: %#v", v, m)
					}
				}
				for _, v := range []string{`0`, top} {
					in := object(rm.typ, replaced(rm.members, i, v))
					m, err := DecodeMessage([]byte(in))
					if err != nil {
						t.Fatalf("%s: %v", v, err)
					}
					if got := encodeString(t, m); got != in {
						t.Errorf("%s re-encodes as %s", v, got)
					}
				}
			})
		}
	}
}

// Strings: escapes and non-ASCII decode to their text and encode as serde
// writes them; invalid UTF-8 and lone surrogates are refused, in a known
// field, an unknown one, or a member name.
func TestConformanceStrings(t *testing.T) {
	const escaped = `"q\" b\\ s\/ \u0041 \b\f\n\r\t \u0001 \u001f \u007f é \u00e9 \ud83e\udd80 \u2028 <&>"`
	const text = "q\" b\\ s/ A \b\f\n\r\t \x01 \x1f \x7f é é 🦀 \u2028 <&>"
	const serde = `"q\" b\\ s/ A \b\f\n\r\t \u0001 \u001f ` + "\x7f é é 🦀 \u2028 <&>" + `"`
	for _, rm := range refMessages {
		for i, mb := range rm.members {
			if mb.kind != "str" {
				continue
			}
			t.Run(rm.typ+"."+mb.name, func(t *testing.T) {
				m, err := DecodeMessage([]byte(object(rm.typ, replaced(rm.members, i, escaped))))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := encodeString(t, m), object(rm.typ, replaced(rm.members, i, serde)); got != want {
					t.Fatalf("encode:\n got %s\nwant %s", got, want)
				}
				if !strings.Contains(fieldText(m), text) {
					t.Fatalf("decoded text differs: %#v", m)
				}
				for _, v := range []string{"\"\xff\"", "\"a\xc3\"", `"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, "\"\x01\"", `"\x"`} {
					if _, err := DecodeMessage([]byte(object(rm.typ, replaced(rm.members, i, v)))); !errors.Is(err, ErrInvalidJSON) {
						t.Errorf("%q accepted", v)
					}
				}
			})
		}
	}
	for _, in := range []string{
		"{\"type\":\"ok\",\"x\":\"\xff\"}",
		"{\"type\":\"ok\",\"\xff\":1}",
		`{"type":"ok","x":"\udfff"}`,
		"\xef\xbb\xbf{\"type\":\"ok\"}", // serde_json refuses a BOM
		"",
		" ",
		"null",
	} {
		if _, err := DecodeMessage([]byte(in)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%q accepted", in)
		}
	}
}

// fieldText joins every string field of m (for the escape check).
func fieldText(m Message) string {
	var b strings.Builder
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String {
			b.WriteString(f.String())
			b.WriteByte(0)
		}
	}
	return b.String()
}

// The frame header is big-endian throughout, in the reference's order.
func TestConformanceHeaderBytes(t *testing.T) {
	got := AppendHeader(nil, 0x0102, 0x03040506)
	want := []byte{0x46, 0x4c, 0x58, 0x31, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}
	if !bytes.Equal(got, want) {
		t.Fatalf("header % x, want % x", got, want)
	}
	h, err := ParseHeader(append(header(Magic, 1, 0x0021, 0x00010203), 0), 1<<20)
	if err != nil || h != (Header{Version: 1, Flags: 0x0021, Length: 0x00010203}) {
		t.Fatalf("parse: %+v %v", h, err)
	}
	for _, c := range []struct {
		hdr  []byte
		want error
	}{
		{header(0x314C5846, 1, 0, 0), ErrInvalidMagic}, // little-endian magic
		{header(Magic, 0, 0, 0), ErrUnsupportedVersion},
		{header(Magic, 0x0100, 0, 0), ErrUnsupportedVersion}, // little-endian version 1
		{header(Magic, 2, 0, 0), ErrUnsupportedVersion},
		{header(Magic, 1, 0, 0)[:HeaderSize-1], ErrTruncated},
		{nil, ErrTruncated},
	} {
		if _, err := ParseHeader(c.hdr, 0); !errors.Is(err, c.want) || !IsFatal(err) {
			t.Errorf("% x: %v, want fatal %v", c.hdr, err, c.want)
		}
	}
}

// Length: 0 is a frame (whose payload no layout accepts); the limit itself
// is accepted and one more is fatal, unknown flags or not (the body cannot
// be skipped); nothing is allocated for the claim.
func TestConformanceHeaderLength(t *testing.T) {
	for _, flags := range []uint16{0, FlagBinaryPublishBatch, 0x0040, 0x8000} {
		if _, err := ParseHeader(header(Magic, 1, flags, DefaultMaxFrameBytes), 0); IsFatal(err) {
			t.Errorf("flags %#x: length at the limit: %v", flags, err)
		}
		if _, err := ParseHeader(header(Magic, 1, flags, DefaultMaxFrameBytes+1), 0); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("flags %#x: length one above the limit: %v", flags, err)
		}
		f, rest, err := DecodeFrame(header(Magic, 1, flags, 0), 0)
		if IsFatal(err) || len(f.Payload) != 0 || len(rest) != 0 || f.Flags != flags {
			t.Errorf("flags %#x: length 0: %+v %v", flags, f, err)
		}
	}
	if _, err := DecodeMessage(nil); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("empty JSON payload: %v", err)
	}
	var pb BinaryPublishBatch
	var eb BinaryEventBatch
	for _, fl := range []uint16{FlagBinaryPublishBatch, FlagBinaryPublishBatch | FlagBinaryPublishAcked} {
		if err := DecodePublishBatch(fl, nil, &pb); !errors.Is(err, ErrTruncated) {
			t.Errorf("empty %#x body: %v", fl, err)
		}
	}
	for _, fl := range []uint16{0x0002, 0x0004, 0x0022, 0x0024} {
		if err := DecodeEventBatch(fl, nil, &eb); !errors.Is(err, ErrTruncated) {
			t.Errorf("empty %#x body: %v", fl, err)
		}
	}
	if _, err := DecodePublishAck(nil); !errors.Is(err, ErrTruncated) {
		t.Errorf("empty ack body: %v", err)
	}
}

// Every bit outside KNOWN_FLAGS (0x003F), alone or beside known ones, is
// reported without being fatal, its body consumed, so the stream stays in
// sync for the reference's "unsupported frame flags" reply; every
// combination of known bits passes the header check.
func TestConformanceUnknownFlagBits(t *testing.T) {
	for b := 6; b < 16; b++ {
		for _, flags := range []uint16{1 << b, 1<<b | FlagBinaryPublishBatch, 1<<b | KnownFlags} {
			in := append(header(Magic, 1, flags, 2), 0xAA, 0xBB)
			in = AppendFrame(in, 0, []byte(`{"type":"ok"}`))
			r := NewReader(bytes.NewReader(in), 0)
			f, err := r.ReadFrame()
			if !errors.Is(err, ErrUnknownFlags) || IsFatal(err) || f.Flags != flags || !bytes.Equal(f.Payload, []byte{0xAA, 0xBB}) {
				t.Fatalf("flags %#04x: %+v %v", flags, f, err)
			}
			if f, err := r.ReadFrame(); err != nil || string(f.Payload) != `{"type":"ok"}` {
				t.Fatalf("flags %#04x: next frame %q %v", flags, f.Payload, err)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("flags %#04x: %v", flags, err)
			}
		}
	}
	for flags := range KnownFlags + 1 {
		if _, err := ParseHeader(header(Magic, 1, flags, 0), 0); err != nil {
			t.Fatalf("known flags %#04x: %v", flags, err)
		}
	}
}

// Binary layouts, field by field with distinct values in every byte so a
// swapped or mis-sized field shows.
func TestConformancePublishBatchFields(t *testing.T) {
	body := []byte{
		0x00, 0x03, 'a', 'b', 'c', // tenant
		0x00, 0x00, // empty namespace
		0x00, 0x02, 0xc3, 0xa9, // stream "é"
		0x00, 0x00, 0x00, 0x03, // count
		0x00, 0x00, 0x00, 0x00, // empty payload
		0x00, 0x00, 0x00, 0x01, 0x7f,
		0x00, 0x00, 0x00, 0x02, 0x01, 0x02,
	}
	acked := append([]byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x01}, body...)
	var out BinaryPublishBatch
	if err := DecodePublishBatch(0x0009, acked, &out); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{{}, {0x7f}, {1, 2}}
	if !out.Acked || out.RequestID != 0x0102030405060708 || out.AckMode != AckPerMessage ||
		out.TenantID != "abc" || out.Namespace != "" || out.Stream != "é" || !equalPayloads(out.Payloads, want) {
		t.Fatalf("decoded %+v", out)
	}
	enc, err := AppendAckedPublishBatchFrame(nil, 0x0102030405060708, AckPerMessage, "abc", "", "é", want)
	if err != nil || !bytes.Equal(enc, AppendFrame(nil, 0x0009, acked)) {
		t.Fatalf("encode % x %v", enc, err)
	}
	// Count 0: a valid, empty batch (the reference broker's no-op).
	empty := []byte{0, 1, 't', 0, 1, 'n', 0, 1, 's', 0, 0, 0, 0}
	if err := DecodePublishBatch(0x0001, empty, &out); err != nil || len(out.Payloads) != 0 || out.Acked {
		t.Fatalf("count 0: %+v %v", out, err)
	}
	// Every strict prefix is an error (never a shorter batch), at every
	// byte, for both layouts.
	for _, c := range []struct {
		flags uint16
		b     []byte
	}{{0x0001, body}, {0x0009, acked}, {0x0001, empty}} {
		for n := range len(c.b) {
			if err := DecodePublishBatch(c.flags, c.b[:n], &out); err == nil {
				t.Fatalf("flags %#x: prefix of %d bytes accepted", c.flags, n)
			}
		}
	}
	// A count above the payloads present is refused; below, the rest is
	// trailing bytes, which the broker ignores as the reference does.
	over := slices.Clone(body)
	binary.BigEndian.PutUint32(over[11:], 4)
	if err := DecodePublishBatch(0x0001, over, &out); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCountTooLarge) {
		t.Fatalf("count above payloads: %v", err)
	}
	under := slices.Clone(body)
	binary.BigEndian.PutUint32(under[11:], 2)
	if err := DecodePublishBatch(0x0001, under, &out); err != nil || len(out.Payloads) != 2 {
		t.Fatalf("count below payloads: %+v %v", out, err)
	}
}

func TestConformanceEventBatchFields(t *testing.T) {
	payloads := []byte{0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x7f}
	sub := []byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}
	base := []byte{0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28}
	want := [][]byte{{}, {0x7f}}
	for _, c := range []struct {
		flags uint16
		body  []byte
	}{
		{0x0004, payloads},
		{0x0024, slices.Concat(base, payloads)},
		{0x0002, slices.Concat(sub, payloads)},
		{0x0022, slices.Concat(sub, base, payloads)},
	} {
		var out BinaryEventBatch
		if err := DecodeEventBatch(c.flags, c.body, &out); err != nil {
			t.Fatalf("%#x: %v", c.flags, err)
		}
		perSub, offsets := c.flags&0x0002 != 0, c.flags&0x0020 != 0
		if out.Shared == perSub || out.HasOffsets != offsets || !equalPayloads(out.Payloads, want) ||
			(perSub && out.SubscriptionID != 0x1112131415161718) || (offsets && out.BaseOffset != 0x2122232425262728) {
			t.Fatalf("%#x: decoded %+v", c.flags, out)
		}
		var enc []byte
		if perSub {
			enc = AppendSubEventBatchFrame(nil, 0x1112131415161718, offsets, 0x2122232425262728, want)
		} else {
			enc = AppendEventBatchFrame(nil, offsets, 0x2122232425262728, want)
		}
		if !bytes.Equal(enc, AppendFrame(nil, c.flags, c.body)) {
			t.Fatalf("%#x: encode % x", c.flags, enc)
		}
		for n := range len(c.body) {
			if err := DecodeEventBatch(c.flags, c.body[:n], &out); err == nil {
				t.Fatalf("%#x: prefix of %d bytes accepted", c.flags, n)
			}
		}
		if err := DecodeEventBatch(c.flags, append(slices.Clone(c.body), 0), &out); !errors.Is(err, ErrTrailingBytes) {
			t.Fatalf("%#x: trailing byte: %v", c.flags, err)
		}
	}
	// A count with its payloads missing, or beyond what the body could
	// hold, is refused before anything is reserved.
	var out BinaryEventBatch
	if err := DecodeEventBatch(0x0004, []byte{0, 0, 0, 1}, &out); !errors.Is(err, ErrCountTooLarge) {
		t.Fatalf("count 1, no payload: %v", err)
	}
	if err := DecodeEventBatch(0x0004, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, &out); !errors.Is(err, ErrCountTooLarge) {
		t.Fatalf("count 2^32-1: %v", err)
	}
}

func TestConformancePublishAckFields(t *testing.T) {
	body := []byte{0x01, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x00, 0x02, 0xc3, 0xa9}
	a, err := DecodePublishAck(body)
	if err != nil || a.OK || a.RequestID != 0x1112131415161718 || a.Message != "é" {
		t.Fatalf("decoded %+v %v", a, err)
	}
	if enc := AppendPublishAckFrame(nil, 0x1112131415161718, false, "é"); !bytes.Equal(enc, AppendFrame(nil, 0x0010, body)) {
		t.Fatalf("encode % x", enc)
	}
	for n := range len(body) {
		if _, err := DecodePublishAck(body[:n]); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
}
