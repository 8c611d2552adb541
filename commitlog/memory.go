package commitlog

import (
	"context"
	"sync"
	"time"
)

// Default bounds of a memory log, used when NewMemory is given a bound ≤ 0.
const (
	DefaultMemoryRecords = 1024
	DefaultMemoryBytes   = 64 << 20
)

// Memory is a Log held in a bounded in-memory ring: the newest records, at
// most capacity of them and at most maxBytes of payload (the newest record
// is kept even when it alone exceeds maxBytes). Offsets start at 0; reads
// below the ring's start return a *TooOldError. Nothing survives Close or
// the process. Payloads are kept, not copied.
type Memory struct {
	mu       sync.RWMutex
	buf      []Record // circular; buf[(head+i)%len] holds offset start+i
	head, n  int
	start    uint64 // offset of the oldest record held (meaningful when n > 0)
	next     uint64
	bytes    int
	maxBytes int
	closed   bool
	now      func() time.Time
	note     notifier
}

var _ Log = (*Memory)(nil)

// NewMemory returns an empty memory log bounded by capacity records and
// maxBytes payload bytes (≤ 0: DefaultMemoryRecords, DefaultMemoryBytes).
func NewMemory(capacity, maxBytes int) *Memory {
	if capacity <= 0 {
		capacity = DefaultMemoryRecords
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMemoryBytes
	}
	return &Memory{buf: make([]Record, capacity), maxBytes: maxBytes, now: time.Now}
}

// Append adds the payloads; see Log.Append. It never blocks.
func (m *Memory) Append(ctx context.Context, payloads [][]byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, ErrClosed
	}
	first := m.next
	ts := m.now().UnixMicro()
	for _, p := range payloads {
		m.push(Record{Offset: m.next, Timestamp: ts, Payload: p})
	}
	m.mu.Unlock()
	if len(payloads) > 0 {
		m.note.broadcast()
	}
	return first, nil
}

// AppendAt adds records at their own offsets; see Log.AppendAt.
func (m *Memory) AppendAt(ctx context.Context, records []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if err := checkContiguous(m.next, records); err != nil {
		m.mu.Unlock()
		return err
	}
	for _, r := range records {
		m.push(r)
	}
	m.mu.Unlock()
	if len(records) > 0 {
		m.note.broadcast()
	}
	return nil
}

// push appends r (r.Offset == m.next) and evicts to the bounds.
func (m *Memory) push(r Record) {
	if m.n == 0 {
		m.start = r.Offset
	}
	if m.n == len(m.buf) {
		m.evict()
	}
	m.buf[(m.head+m.n)%len(m.buf)] = r
	m.n++
	m.bytes += len(r.Payload)
	m.next = r.Offset + 1
	for m.bytes > m.maxBytes && m.n > 1 {
		m.evict()
	}
}

func (m *Memory) evict() {
	m.bytes -= len(m.buf[m.head].Payload)
	m.buf[m.head] = Record{}
	m.head = (m.head + 1) % len(m.buf)
	m.n--
	m.start++
}

// Read returns records from offset from; see Log.Read.
func (m *Memory) Read(from uint64, maxRecords, maxBytes int) ([]Record, error) {
	maxRecords, maxBytes = readBounds(maxRecords, maxBytes)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	if oldest := m.oldestLocked(); from < oldest {
		return nil, &TooOldError{Requested: from, Oldest: oldest}
	}
	var out []Record
	size := 0
	for off := from; off < m.next && len(out) < maxRecords; off++ {
		r := m.buf[(m.head+int(off-m.start))%len(m.buf)]
		if len(out) > 0 && size+len(r.Payload) > maxBytes {
			break
		}
		size += len(r.Payload)
		out = append(out, r)
	}
	return out, nil
}

func (m *Memory) oldestLocked() uint64 {
	if m.n == 0 {
		return m.next
	}
	return m.start
}

// Oldest is the oldest offset held (Next when empty).
func (m *Memory) Oldest() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.oldestLocked()
}

// Next is the offset the next record gets.
func (m *Memory) Next() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.next
}

// Wait blocks until Next() > after; see Log.Wait.
func (m *Memory) Wait(ctx context.Context, after uint64) error {
	return waitUntil(ctx, &m.note, func() (bool, error) {
		m.mu.RLock()
		defer m.mu.RUnlock()
		if m.closed {
			return false, ErrClosed
		}
		return m.next > after, nil
	})
}

// Purge drops every record held; see Log.Purge. Oldest becomes Next, and
// appends continue from it. Records already returned by Read stay valid
// (a Read never shares the ring's slots).
func (m *Memory) Purge() (first, removed uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, 0, ErrClosed
	}
	removed = uint64(m.n)
	clear(m.buf) // do not pin the payloads
	m.head, m.n, m.bytes = 0, 0, 0
	m.start = m.next
	return m.next, removed, nil
}

// Close drops the records and wakes waiters with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.buf, m.n, m.bytes = nil, 0, 0
	m.mu.Unlock()
	m.note.broadcast()
	return nil
}
