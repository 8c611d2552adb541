package commitlog

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The golden vectors of the package documentation.
func TestFormatGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"record", appendRecord(nil, 7, 9, []byte("hi")), "00000002 0000000000000007 0000000000000009 3667C7E5 6869"},
		{"segment header", appendSegmentHeader(nil, segmentHeader{Base: 7, Created: 9}), "46584C47 0001 0000 0000000000000007 0000000000000009 4C8F38BB 00000000"},
		{"index", encodeIndex(7, []indexEntry{{7, 32}}), "46584958 0001 0000 0000000000000007 810D4D79 00000000 0000000000000007 0000000000000020"},
	} {
		if want := strings.ReplaceAll(c.want, " ", ""); strings.ToUpper(hex.EncodeToString(c.got)) != want {
			t.Errorf("%s: %X, want %s", c.name, c.got, want)
		}
	}
}

func TestDecodeRecord(t *testing.T) {
	b := appendRecord(nil, 5, -3, []byte("payload"))
	r, n, err := decodeRecord(append(b, 0xFF), MaxRecordLimit)
	if err != nil || n != len(b) || r.Offset != 5 || r.Timestamp != -3 || string(r.Payload) != "payload" {
		t.Fatalf("decode = %+v, %d, %v", r, n, err)
	}
	for cut := range len(b) {
		if _, _, err := decodeRecord(b[:cut], MaxRecordLimit); err != errIncomplete {
			t.Fatalf("decode of %d bytes: %v", cut, err)
		}
	}
	if _, _, err := decodeRecord(b, 6); err != errTooLarge {
		t.Fatalf("decode above the limit: %v", err)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x10
		if _, _, err := decodeRecord(bad, MaxRecordLimit); err == nil {
			t.Fatalf("flipping a bit of byte %d went unnoticed", i)
		}
	}
	// A huge length is rejected from the header alone, without allocating.
	huge := appendRecord(nil, 0, 0, nil)
	huge[0] = 0xFF
	allocs := testing.AllocsPerRun(100, func() {
		decodeRecord(huge, MaxRecordLimit)
		decodeRecord(b, MaxRecordLimit)
	})
	if allocs != 0 {
		t.Fatalf("decodeRecord allocates %v times", allocs)
	}
}

func TestParseSegmentHeader(t *testing.T) {
	good := appendSegmentHeader(nil, segmentHeader{Base: 42, Created: 1})
	if h, err := parseSegmentHeader(good); err != nil || h.Base != 42 || h.Created != 1 {
		t.Fatalf("parse = %+v, %v", h, err)
	}
	if _, err := parseSegmentHeader(good[:31]); err == nil {
		t.Fatal("short header accepted")
	}
	for i := range 28 {
		bad := append([]byte(nil), good...)
		bad[i] ^= 1
		if _, err := parseSegmentHeader(bad); err == nil {
			t.Fatalf("a flip in header byte %d went unnoticed", i)
		}
	}
}

func TestParseIndex(t *testing.T) {
	entries := []indexEntry{{10, 32}, {20, 500}, {30, 900}}
	if got, err := parseIndex(encodeIndex(10, entries), 10, 1000); err != nil || len(got) != 3 || got[2] != entries[2] {
		t.Fatalf("parse = %v, %v", got, err)
	}
	for name, c := range map[string]struct {
		base    uint64
		size    int64
		entries []indexEntry
	}{
		"wrong base":        {11, 1000, entries},
		"past the segment":  {10, 910, entries},
		"first not at 32":   {10, 1000, []indexEntry{{10, 40}}},
		"not increasing":    {10, 1000, []indexEntry{{10, 32}, {20, 500}, {20, 600}}},
		"positions go back": {10, 1000, []indexEntry{{10, 32}, {20, 500}, {25, 400}}},
	} {
		if _, err := parseIndex(encodeIndex(10, c.entries), c.base, c.size); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	b := encodeIndex(10, entries)
	if _, err := parseIndex(b[:len(b)-1], 10, 1000); err == nil {
		t.Error("partial entry accepted")
	}
	if e, ok := lookup(entries, 25); !ok || e.Offset != 20 {
		t.Errorf("lookup(25) = %v, %v", e, ok)
	}
	if _, ok := lookup(entries, 9); ok {
		t.Error("lookup below the first entry succeeded")
	}
}

func TestSegmentNames(t *testing.T) {
	if n := segmentName(4711); n != "00000000000000004711.log" {
		t.Fatalf("segmentName = %q", n)
	}
	for name, want := range map[string]bool{
		"00000000000000004711.log":  true,
		"0000000000000004711.log":   false,
		"+0000000000000004711.log":  false,
		"00000000000000004711.logx": false,
		"abcdefghijabcdefghij.log":  false,
	} {
		if base, ok := parseName(name, ".log"); ok != want || (ok && base != 4711) {
			t.Errorf("parseName(%q) = %d, %v", name, base, ok)
		}
	}
}
