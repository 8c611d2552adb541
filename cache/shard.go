package cache

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// never is the expiry of an entry without TTL: no clock reading reaches it.
const never = math.MaxInt64

// shrinkSlots: a shard compacts a slot table longer than this once fewer
// than a quarter of its slots are live (see compact), so a burst does not
// pin its high-water memory and eviction's random samples keep finding
// live slots.
const shrinkSlots = 1024

// sweepChunk bounds how many slots the sweeper visits per hold of a shard's
// lock, so sweeping never stalls a shard's readers for long.
const sweepChunk = 512

// slot holds one entry; version 0 marks a free slot.
type slot struct {
	access  atomic.Uint64 // recency tick: the cache version at the last read or write
	key     string
	value   []byte // immutable once stored
	expires int64  // nanoseconds since Cache.epoch; never if no TTL
	version uint64
}

func (sl *slot) size() int64 { return entrySize(sl.key, len(sl.value)) }

func entrySize(key string, valueLen int) int64 {
	return int64(len(key)) + int64(valueLen) + EntryOverhead
}

// shard is one lock's worth of a cache. Fields below mu are guarded by it;
// the counters are atomics so Stats can read them without the lock.
type shard struct {
	mu       sync.RWMutex
	index    map[string]uint32
	slots    []slot
	free     []uint32
	sweepPos int
	// compactions counts compact calls, so a loop over slot indexes
	// notices that they were renumbered under it.
	compactions uint64
	// scratch holds a durable cache's record being appended (a one-record
	// batch, so an append allocates neither).
	scratch [1][]byte

	entries                        atomic.Int64
	hits, misses                   atomic.Uint64
	expirations, evictions         atomic.Uint64
	puts, deletes, conditionFailed atomic.Uint64
	flushed                        atomic.Uint64

	_ [64]byte // keep the next shard's lock off this shard's cache lines
}

// insert stores a new entry. Caller holds mu.
func (s *shard) insert(key string, value []byte, expires int64, version uint64) {
	var i uint32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.slots = append(s.slots, slot{})
		i = uint32(len(s.slots) - 1)
	}
	sl := &s.slots[i]
	sl.key, sl.value, sl.expires, sl.version = key, value, expires, version
	sl.access.Store(version)
	if s.index == nil {
		s.index = make(map[string]uint32)
	}
	s.index[key] = i
	s.entries.Add(1)
}

// remove frees slot i and returns the size it accounted. Caller holds mu
// and subtracts the size from the cache's byte counter. It may compact the
// table, renumbering every slot: a caller that goes on using slot indexes
// after it checks s.compactions.
func (s *shard) remove(i uint32) int64 {
	sl := &s.slots[i]
	size := sl.size()
	delete(s.index, sl.key)
	sl.key, sl.value, sl.expires, sl.version = "", nil, 0, 0
	sl.access.Store(0)
	s.free = append(s.free, i)
	if live := s.entries.Add(-1); len(s.slots) > shrinkSlots && live < int64(len(s.slots)/4) {
		s.compact()
	}
	return size
}

// compact moves the live entries, in order, into a table of their size
// and rebuilds the index, releasing the high-water table and map (a Go map
// never shrinks). The sweep position moves with the entries. Removals
// between two compactions outnumber three quarters of the table, so the
// copying costs O(1) per removal. Caller holds mu.
func (s *shard) compact() {
	s.compactions++
	live := int(s.entries.Load())
	if live == 0 {
		s.index, s.slots, s.free, s.sweepPos = nil, nil, nil, 0
		return
	}
	slots := make([]slot, live)
	index := make(map[string]uint32, live)
	pos, j := live, 0
	for i := range s.slots {
		if i == s.sweepPos {
			pos = j
		}
		sl := &s.slots[i]
		if sl.version == 0 {
			continue
		}
		d := &slots[j]
		d.key, d.value, d.expires, d.version = sl.key, sl.value, sl.expires, sl.version
		d.access.Store(sl.access.Load())
		index[sl.key] = uint32(j)
		j++
	}
	s.index, s.slots, s.free, s.sweepPos = index, slots, nil, pos
}

// reset empties the shard and drops its tables, returning the bytes its
// entries accounted. Caller holds mu.
func (s *shard) reset() int64 {
	_, _, size := s.empty(never)
	return size
}

// empty removes every entry and drops the tables and map (to nil, as
// compact does when no entry is left, so they take no memory until the
// next insert). It returns how many entries were live at now and how many
// had expired, and the bytes they all accounted, which the caller
// subtracts from the cache's byte counter. Slot indexes are renumbered:
// compactions counts it. Caller holds mu.
func (s *shard) empty(now int64) (live, expired uint64, size int64) {
	for i := range s.slots {
		sl := &s.slots[i]
		switch {
		case sl.version == 0:
			continue
		case sl.expires != never && sl.expires <= now:
			expired++
		default:
			live++
		}
		size += sl.size()
	}
	s.index, s.slots, s.free, s.sweepPos = nil, nil, nil, 0
	s.compactions++
	s.entries.Store(0)
	return live, expired, size
}

// pick returns a random live slot; ok is false if the shard is empty.
// Caller holds mu, at least for reading.
func (s *shard) pick() (i uint32, ok bool) {
	n := len(s.slots)
	if n == 0 || s.entries.Load() == 0 {
		return 0, false
	}
	for range 8 {
		if j := uint32(rand.IntN(n)); s.slots[j].version != 0 {
			return j, true
		}
	}
	// A sparse table: the first live slot from a random start.
	start := rand.IntN(n)
	for d := range n {
		if j := uint32((start + d) % n); s.slots[j].version != 0 {
			return j, true
		}
	}
	return 0, false
}

// other returns a live slot other than i, the first after it in the table;
// ok is false if i is the only one. Caller holds mu, at least for reading.
func (s *shard) other(i uint32) (j uint32, ok bool) {
	n := len(s.slots)
	for d := 1; d < n; d++ {
		if j := uint32((int(i) + d) % n); s.slots[j].version != 0 {
			return j, true
		}
	}
	return 0, false
}

// sweep visits up to budget slots from the shard's sweep position, at most
// sweepChunk per lock hold, removing entries expired at now. It subtracts
// the bytes each chunk freed with account (the cache's counters) before it
// releases the lock, so the counter never lags the entries: a writer between
// two chunks must not evict to make room that is already free. It reports
// the slots visited, the entries removed, and whether it reached the end of
// the table (the position then wraps to 0).
func (s *shard) sweep(now int64, budget int, account func(int64)) (visited, removed int, wrapped bool) {
	for visited < budget {
		s.mu.Lock()
		var freed int64
		end := min(len(s.slots), s.sweepPos+min(sweepChunk, budget-visited))
		gen := s.compactions
		for s.sweepPos < end {
			i := s.sweepPos
			s.sweepPos++ // before remove, so a compaction carries it along
			visited++
			sl := &s.slots[i]
			if sl.version != 0 && sl.expires <= now {
				freed += s.remove(uint32(i))
				removed++
				if s.compactions != gen { // slots renumbered: end is stale
					break
				}
			}
		}
		account(-freed)
		if s.sweepPos >= len(s.slots) {
			s.sweepPos = 0
			wrapped = true
		}
		s.mu.Unlock()
		if wrapped {
			break
		}
	}
	s.expirations.Add(uint64(removed))
	return visited, removed, wrapped
}
