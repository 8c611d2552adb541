package commitlog

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// A log written by concurrent group writes (records of several appends in
// one write call) over several segments, its active segment then cut at
// every byte (a crash image: a write torn anywhere, or a roll cut short
// inside the new segment's header): Open always succeeds, keeps exactly
// the records wholly before the cut (the sealed segments' and the active
// one's), every one with its payload, and the reopened log verifies and
// takes appends at the right offset. A checksum error never surfaces as
// data or as a refusal.
func TestHunt9TornActiveSegmentEveryByte(t *testing.T) {
	src := t.TempDir()
	opts := testOptions()
	l := openT(t, src, opts)
	want := map[uint64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				ps := [][]byte{fmt.Appendf(nil, "w%d-%d-a", w, i), fmt.Appendf(nil, "w%d-%d-b-%s", w, i, strings.Repeat("y", (w*13+i*7)%60))}
				first, _, err := l.AppendNoWait(ps)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for j, p := range ps {
					want[first+uint64(j)] = string(p)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := l.Next()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	bases := segments(t, src)
	if len(bases) < 3 {
		t.Fatalf("%d segments; the test wants several", len(bases))
	}
	activeBase := bases[len(bases)-1]
	active := segPath(src, activeBase)
	pos := recordPositions(t, active)
	size := fileSize(t, active)
	// ends[i] is the byte after record i of the active segment.
	ends := append(append([]int64(nil), pos[1:]...), size)

	// Every byte of the header and the first record, then each record
	// boundary, the bytes beside it and the middle of each record.
	cuts := map[int64]bool{}
	for c := int64(0); c < min(size, ends[0]+1); c++ {
		cuts[c] = true
	}
	for i, e := range ends {
		for _, c := range []int64{e - 1, e, e + 1, (pos[i] + e) / 2} {
			if c >= 0 && c < size {
				cuts[c] = true
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for cut := range cuts {
		if time.Now().After(deadline) {
			t.Logf("time bound reached after %d cuts", len(cuts))
			break
		}
		dir := copyDir(t, src)
		if err := os.Truncate(segPath(dir, activeBase), cut); err != nil {
			t.Fatal(err)
		}
		keep := activeBase
		for i, e := range ends {
			if e <= cut {
				keep = activeBase + uint64(i) + 1
			}
		}
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("cut at byte %d of %d: Open: %v", cut, size, err)
		}
		if l.Next() != keep || l.Oldest() != 0 {
			l.Close()
			t.Fatalf("cut at byte %d: log [%d, %d), want [0, %d) (of %d)", cut, l.Oldest(), l.Next(), keep, total)
		}
		recs := readAll(t, l, 0)
		for _, r := range recs {
			if want[r.Offset] != string(r.Payload) {
				l.Close()
				t.Fatalf("cut at byte %d: offset %d holds %q, want %q", cut, r.Offset, r.Payload, want[r.Offset])
			}
		}
		first, _, err := l.AppendNoWait([][]byte{[]byte("after")})
		if err != nil || first != keep {
			l.Close()
			t.Fatalf("cut at byte %d: append after recovery at %d: %v (want %d)", cut, first, err, keep)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatalf("cut at byte %d: Verify after recovery: %v", cut, err)
		}
		os.RemoveAll(dir) // keep the temp dir small
	}
}
