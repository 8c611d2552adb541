package commitlog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct{ us atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.us.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.UnixMicro(c.us.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.us.Add(d.Microseconds()) }

// capturedLogger logs into a buffer; read it only once the logging call
// (Open, EnforceRetention) has returned.
func capturedLogger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testOptions are small-segment options with a fake clock and a quiet logger.
func testOptions() Options {
	return Options{SegmentBytes: 1024, IndexSpacingBytes: 128, Clock: newFakeClock().Now, Logger: quietLogger(), RetentionInterval: -1}
}

func openT(t testing.TB, dir string, opts Options) *DiskLog {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// payload is the deterministic payload of offset off: sizes vary from 0 to
// about 300 bytes.
func payload(off uint64) []byte {
	n := int(off*37) % 301
	return bytes.Repeat([]byte{byte('a' + off%26)}, n)
}

// appendN appends offsets [Next, Next+n) in batches of up to batch records,
// with the payloads of payload().
func appendN(t testing.TB, l Log, n, batch int) {
	t.Helper()
	for n > 0 {
		k := min(n, batch)
		next := l.Next()
		ps := make([][]byte, k)
		for i := range ps {
			ps[i] = payload(next + uint64(i))
		}
		first, err := l.Append(context.Background(), ps)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if first != next {
			t.Fatalf("Append first = %d, want %d", first, next)
		}
		n -= k
	}
}

// readAll reads [from, Next) in small steps.
func readAll(t testing.TB, l Log, from uint64) []Record {
	t.Helper()
	var out []Record
	for from < l.Next() {
		rs, err := l.Read(from, 7, 500)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(rs) == 0 {
			t.Fatalf("Read(%d) returned nothing below Next %d", from, l.Next())
		}
		out = append(out, rs...)
		from += uint64(len(rs))
	}
	return out
}

// checkRecords checks that rs are offsets [from, from+len) with payload().
func checkRecords(t testing.TB, rs []Record, from uint64) {
	t.Helper()
	for i, r := range rs {
		want := from + uint64(i)
		if r.Offset != want || !bytes.Equal(r.Payload, payload(want)) {
			t.Fatalf("record %d: offset %d (want %d), payload %d bytes (want %d)", i, r.Offset, want, len(r.Payload), len(payload(want)))
		}
	}
}

func segPath(dir string, base uint64) string { return filepath.Join(dir, segmentName(base)) }

// copyDir copies the regular files of src into a new temp dir.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// segments lists the segment bases in dir.
func segments(t testing.TB, dir string) []uint64 {
	t.Helper()
	files, _, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []uint64
	for _, f := range files {
		bases = append(bases, f.base)
	}
	return bases
}

// recordPositions returns the byte position of every record in a segment.
func recordPositions(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ps []int64
	for pos := segmentHeaderSize; pos < len(b); {
		_, n, err := decodeRecord(b[pos:], MaxRecordLimit)
		if err != nil {
			t.Fatalf("%s at %d: %v", path, pos, err)
		}
		ps = append(ps, int64(pos))
		pos += n
	}
	return ps
}

func flipBit(t testing.TB, path string, pos int64, bit uint) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[pos] ^= 1 << bit
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
