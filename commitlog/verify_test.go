package commitlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyGood(t *testing.T) {
	dir := writeLog(t, testOptions(), 50, 2)
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Oldest != 0 || rep.Next != 50 || rep.Records != 50 || rep.TornTail != nil || len(rep.Notes) != 0 || len(rep.Segments) != len(segments(t, dir)) {
		t.Fatalf("report %+v", rep)
	}
	for i, s := range rep.Segments {
		active := i == len(rep.Segments)-1
		if (s.Index == "ok") == active || s.Records == 0 || s.Newest.IsZero() {
			t.Fatalf("segment report %+v", s)
		}
	}
}

// TestVerifyModifiesNothing: Verify reports a torn tail that Open would cut
// and corruption that Open would refuse, and leaves every byte as it was.
func TestVerifyModifiesNothing(t *testing.T) {
	dir := writeLog(t, testOptions(), 50, 2)
	segs := segments(t, dir)
	last := segPath(dir, segs[len(segs)-1])
	os.Truncate(last, fileSize(t, last)-3)
	before := snapshotDir(t, dir)
	rep, err := Verify(dir)
	if err != nil || rep.TornTail == nil || rep.TornTail.File != last {
		t.Fatalf("Verify of a torn tail: %v, %+v", err, rep.TornTail)
	}
	if rep.Next != 49 {
		t.Fatalf("Next %d, want 49 (the torn record is not in the log)", rep.Next)
	}
	flipBit(t, segPath(dir, segs[1]), segmentHeaderSize+recordHeaderSize, 0)
	before = snapshotDir(t, dir)
	rep, err = Verify(dir)
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.File != segPath(dir, segs[1]) || ce.Position != segmentHeaderSize || len(rep.Corruptions) != 1 {
		t.Fatalf("Verify of a corrupt segment: %v, %+v", err, rep.Corruptions)
	}
	if after := snapshotDir(t, dir); after != before {
		t.Fatal("Verify changed the directory")
	}
}

func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Name())
		b.Write(data)
	}
	return b.String()
}

func TestDump(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testOptions())
	appendN(t, l, 40, 3)
	l.AppendAt(t.Context(), []Record{{Offset: 40, Timestamp: 1, Payload: []byte{0xff, 0x00}}})
	l.Close()

	var text bytes.Buffer
	if err := Dump(dir, 37, 2, &text, DumpText); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "offset=37 time=") || !strings.HasSuffix(lines[0], `payload="`+string(payload(37))+`"`) || !strings.HasSuffix(lines[1], `"…`) {
		t.Fatalf("text dump:\n%s", text.String())
	}

	var js bytes.Buffer
	if err := Dump(dir, 0, 0, &js, DumpJSON); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 41 {
		t.Fatalf("JSON dump has %d lines, want 41", len(lines))
	}
	var rec struct {
		Offset        uint64
		TimestampUS   int64 `json:"timestamp_us"`
		Payload       string
		PayloadBase64 []byte `json:"payload_base64"`
	}
	if err := json.Unmarshal([]byte(lines[40]), &rec); err != nil || rec.Offset != 40 || rec.TimestampUS != 1 || !bytes.Equal(rec.PayloadBase64, []byte{0xff, 0}) {
		t.Fatalf("JSON line %s: %+v %v", lines[40], rec, err)
	}
	json.Unmarshal([]byte(lines[5]), &rec)
	if rec.Offset != 5 || rec.Payload != string(payload(5)) {
		t.Fatalf("JSON line %s", lines[5])
	}

	// Corruption: the valid records, then the error.
	segs := segments(t, dir)
	flipBit(t, segPath(dir, segs[1]), segmentHeaderSize+recordHeaderSize, 0)
	text.Reset()
	err := Dump(dir, 0, 0, &text, DumpText)
	var ce *CorruptionError
	if !errors.As(err, &ce) || strings.Count(text.String(), "\n") != int(segs[1]) {
		t.Fatalf("dump of a corrupt log: %v after %d lines", err, strings.Count(text.String(), "\n"))
	}
}
