package commitlog

import (
	"context"
	"errors"
	"testing"
)

func TestMemoryRoundTripAndBounds(t *testing.T) {
	m := NewMemory(10, 1<<20)
	if m.Oldest() != 0 || m.Next() != 0 {
		t.Fatal("a new memory log is not empty at 0")
	}
	appendN(t, m, 25, 4)
	if m.Oldest() != 15 || m.Next() != 25 {
		t.Fatalf("held [%d, %d), want the newest 10: [15, 25)", m.Oldest(), m.Next())
	}
	checkRecords(t, readAll(t, m, 15), 15)
	var too *TooOldError
	if _, err := m.Read(14, 1, 1); !errors.As(err, &too) || too.Requested != 14 || too.Oldest != 15 || !errors.Is(err, ErrTooOld) {
		t.Fatalf("Read below the ring: %v", err)
	}
	if rs, err := m.Read(25, 1, 1); err != nil || len(rs) != 0 {
		t.Fatalf("Read at Next: %v, %v", rs, err)
	}
	if rs, _ := m.Read(15, 3, 1<<20); len(rs) != 3 {
		t.Fatalf("maxRecords 3: %d records", len(rs))
	}
	if rs, _ := m.Read(16, 10, 1); len(rs) != 1 {
		t.Fatalf("maxBytes 1: %d records, want exactly one", len(rs))
	}
}

func TestMemoryByteBound(t *testing.T) {
	m := NewMemory(100, 1000)
	ctx := context.Background()
	for range 5 {
		m.Append(ctx, [][]byte{make([]byte, 300)})
	}
	if m.Oldest() != 2 {
		t.Fatalf("Oldest %d, want 2 (3 × 300 bytes fit in 1000)", m.Oldest())
	}
	m.Append(ctx, [][]byte{make([]byte, 5000)}) // alone above the bound: kept alone
	if m.Oldest() != 5 || m.Next() != 6 {
		t.Fatalf("held [%d, %d), want just the big record", m.Oldest(), m.Next())
	}
}
