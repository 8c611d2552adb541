package wire

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartTimeRoundTrip(t *testing.T) {
	for _, ms := range []uint64{0, 1, 1796032800000, math.MaxInt64, math.MaxUint64} {
		m := &Subscribe{TenantID: "t1", Namespace: "ns", Stream: "s", Start: &StartPosition{Kind: StartTime, TimeMs: ms}}
		enc, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("encode %d: %v", ms, err)
		}
		want := `{"type":"subscribe","tenant_id":"t1","namespace":"ns","stream":"s","start":{"time_ms":` + strconv.FormatUint(ms, 10) + `}}`
		if string(enc) != want {
			t.Fatalf("encode %d:\n got %s\nwant %s", ms, enc, want)
		}
		got, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("decode %s: %v", enc, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %d: %#v", ms, got.(*Subscribe).Start)
		}
	}
}

// The time form decodes wherever "start" does: escaped names, the type
// tag last, whitespace.
func TestStartTimeDecodeForms(t *testing.T) {
	for _, in := range []string{
		`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"time_ms":42}}`,
		`{"tenant_id":"t","namespace":"n","stream":"s","start":{"time_ms":42},"type":"subscribe"}`,
		`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{ "time_ms" : 42 }}`,
		`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"time\u005fms":42}}`,
	} {
		m, err := DecodeMessage([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		st := m.(*Subscribe).Start
		if st == nil || st.Kind != StartTime || st.TimeMs != 42 {
			t.Fatalf("%s: start %+v", in, st)
		}
	}
}

// Everything but {"time_ms":<u64>} is refused, as malformed JSON.
func TestStartTimeStrict(t *testing.T) {
	for _, start := range []string{
		`{"time_ms":-1}`,
		`{"time_ms":1.5}`,
		`{"time_ms":1e3}`,
		`{"time_ms":"1796032800000"}`,
		`{"time_ms":null}`,
		`{"time_ms":true}`,
		`{"time_ms":18446744073709551616}`,
		`{"time_ms":1,"offset":2}`,
		`{"time_ms":1,"time_ms":2}`,
		`{"time_ms":}`,
		`{"time_ms":1`,
		`{"time":1}`,
		`{"unix_ms":1}`,
		`{"TIME_MS":1}`,
		`{}`,
		`"time"`,
		`"time_ms"`,
		`1796032800000`,
		`["time_ms",1]`,
	} {
		in := `{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":` + start + `}`
		_, err := DecodeMessage([]byte(in))
		if err == nil {
			t.Errorf("start %s: decoded", start)
			continue
		}
		if !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("start %s: %v does not wrap ErrInvalidJSON", start, err)
		}
	}
	_, err := DecodeMessage([]byte(`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"time_ms":-5}}`))
	if err == nil || !strings.Contains(err.Error(), "start.time_ms must be an unsigned integer") {
		t.Fatalf("error names the field: %v", err)
	}
}

func TestStartAtAndTime(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 999_999, time.UTC)
	p := StartAt(at)
	if p.Kind != StartTime || p.TimeMs != 1796032800000 {
		t.Fatalf("StartAt = %+v", p)
	}
	if !p.Time().Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("Time = %v", p.Time())
	}
	if p := StartAt(time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)); p.TimeMs != 0 {
		t.Fatalf("before 1970: %+v", p)
	}
	far := StartPosition{Kind: StartTime, TimeMs: math.MaxUint64}.Time()
	if !far.Equal(time.UnixMilli(math.MaxInt64)) || !far.After(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("largest time_ms = %v", far)
	}
}

// The broker grants the bit only to a client that offered it.
func TestCapStartTimeNegotiation(t *testing.T) {
	if ExtensionCaps&CapStartTime == 0 {
		t.Fatal("CapStartTime is not among ExtensionCaps")
	}
	for _, c := range []uint16{CapCacheExt, CapQueue, CapCacheBin, CapMemOffsets, KnownFlags, FlagQueueDelivery, FlagBinaryCache} {
		if c&CapStartTime != 0 {
			t.Fatalf("CapStartTime %#04x overlaps %#04x", CapStartTime, c)
		}
	}
	if got := ServerFlagsFor(KnownFlags); got&CapStartTime != 0 {
		t.Fatalf("granted without the offer: %#04x", got)
	}
	if got := ServerFlagsFor(OriginalV1Flags); got != KnownFlags {
		t.Fatalf("a reference client gets %#04x", got)
	}
	if got := ServerFlagsFor(KnownFlags | CapStartTime); got != KnownFlags|CapStartTime {
		t.Fatalf("offered: %#04x", got)
	}
}
