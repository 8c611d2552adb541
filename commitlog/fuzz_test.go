package commitlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRecordDecode: any bytes given to the record decoder produce a record
// that re-encodes to the same bytes, or one of its three errors; never a
// panic, and never an allocation (a length is only ever used to slice
// bytes already in hand).
func FuzzRecordDecode(f *testing.F) {
	f.Add(appendRecord(nil, 7, 9, []byte("hi")))
	f.Add(appendRecord(nil, 0, 0, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		var n int
		var err error
		allocs := testing.AllocsPerRun(1, func() { r, n, err = decodeRecord(b, 1<<20) })
		if allocs != 0 {
			t.Fatalf("decodeRecord allocated %v times", allocs)
		}
		switch {
		case err == nil:
			if n > len(b) || string(appendRecord(nil, r.Offset, r.Timestamp, r.Payload)) != string(b[:n]) {
				t.Fatalf("decoded %+v (%d bytes) does not re-encode to its input", r, n)
			}
		case err != errIncomplete && err != errTooLarge && err != errChecksum:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzRecovery: any contents of a log's only segment file make Open either
// recover or return a *CorruptionError; never a panic. After a recovery,
// Verify passes and opening again gives the same log.
func FuzzRecovery(f *testing.F) {
	seed := appendSegmentHeader(nil, segmentHeader{Base: 0, Created: 1})
	for i := range uint64(4) {
		seed = appendRecord(seed, i, int64(i), payload(i))
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add(seed[:40])
	f.Add(seed[:segmentHeaderSize])
	f.Add([]byte{})
	f.Add([]byte("FXLG garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{Sync: SyncNever, Logger: quietLogger(), SegmentBytes: 4096}
		l, err := Open(dir, opts)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("Open returned %T %v, want a *CorruptionError", err, err)
			}
			return
		}
		next := l.Next()
		rs, err := l.Read(0, 0, 1<<30)
		if err != nil || uint64(len(rs)) != next {
			t.Fatalf("Read after recovery: %d records of %d, %v", len(rs), next, err)
		}
		l.Close()
		if _, err := Verify(dir); err != nil {
			t.Fatalf("Verify after recovery: %v", err)
		}
		l, err = Open(dir, opts)
		if err != nil || l.Next() != next {
			t.Fatalf("reopen: %v, Next %d want %d", err, l.Next(), next)
		}
		l.Close()
	})
}
