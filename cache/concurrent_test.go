package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// sharedValue encodes (writer, seq) with a checksum, so a torn or foreign
// value is detected. The writer's buffer is reused across writes, so a cache
// that kept the caller's slice would show up too.
func sharedValue(buf []byte, writer, seq uint64) []byte {
	buf = binary.BigEndian.AppendUint64(buf[:0], writer)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	return binary.BigEndian.AppendUint32(buf, crc32.ChecksumIEEE(buf))
}

func decodeShared(v []byte) (writer, seq uint64, ok bool) {
	if len(v) != 20 || crc32.ChecksumIEEE(v[:16]) != binary.BigEndian.Uint32(v[16:]) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), true
}

// TestConcurrentPutGet: 32 goroutines each read back their own keys after
// every write, and all of them write and read shared keys, checking that
// every value read is whole, was written, and that versions seen per key
// never go backwards.
func TestConcurrentPutGet(t *testing.T) {
	const (
		goroutines = 32
		ownKeys    = 16
		sharedKeys = 8
		rounds     = 2000
	)
	c, _ := newTestCache(t, Config{Shards: 8})
	var published [goroutines]atomic.Uint64 // highest seq each writer has begun writing
	var wg sync.WaitGroup
	for g := range uint64(goroutines) {
		wg.Go(func() {
			buf := make([]byte, 0, 32)
			var lastVersion [sharedKeys]uint64
			for seq := uint64(1); seq <= rounds; seq++ {
				own := fmt.Sprintf("own-%d-%d", g, seq%ownKeys)
				want := sharedValue(buf, g, seq)
				if _, err := c.Put(own, want, PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				if got, ok := c.Get(own); !ok || string(got) != string(sharedValue(nil, g, seq)) {
					t.Errorf("goroutine %d read %x,%v from its key %s, wrote %x", g, got, ok, own, sharedValue(nil, g, seq))
					return
				}

				k := seq % sharedKeys
				shared := "shared-" + strconv.FormatUint(k, 10)
				published[g].Store(seq)
				if _, err := c.Put(shared, sharedValue(buf, g, seq), PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				it, ok := c.GetWithMeta("shared-" + strconv.FormatUint((k+3)%sharedKeys, 10))
				if !ok {
					continue // not written yet
				}
				w, s, valid := decodeShared(it.Value)
				if !valid || w >= goroutines || s == 0 || s > published[w].Load() {
					t.Errorf("read an unknown value %x (writer %d seq %d)", it.Value, w, s)
					return
				}
				idx := (k + 3) % sharedKeys
				if it.Version < lastVersion[idx] {
					t.Errorf("version of %d went back from %d to %d", idx, lastVersion[idx], it.Version)
					return
				}
				lastVersion[idx] = it.Version
			}
		})
	}
	wg.Wait()
	checkInvariants(t, c)
	if st := c.Stats(); st.Entries != goroutines*ownKeys+sharedKeys || st.Puts != 2*goroutines*rounds {
		t.Fatalf("stats %+v", st)
	}
}

// TestCASCounterIsLinearizable: 16 goroutines each add 1000 to a counter by
// read-version then IfVersion put. Every successful CAS must be observed
// exactly once: the final value is the total, the versions handed out are
// distinct and contiguous, and the value written at each version is that
// version's rank.
func TestCASCounterIsLinearizable(t *testing.T) {
	const goroutines, increments = 16, 1000
	c, _ := newTestCache(t, Config{})
	type write struct{ version, value uint64 }
	results := make([][]write, goroutines)
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range increments {
				for {
					var n, ver uint64
					if it, ok := c.GetWithMeta("counter"); ok {
						n, _ = strconv.ParseUint(string(it.Value), 10, 64)
						ver = it.Version
					}
					next := n + 1
					if next%4 == 0 {
						runtime.Gosched() // widen the read-to-CAS window
					}
					v, err := c.Put("counter", strconv.AppendUint(nil, next, 10), PutOptions{IfVersion: &ver})
					if err == nil {
						results[g] = append(results[g], write{v, next})
						break
					}
					var ce *ConditionError
					if !errors.As(err, &ce) || ce.Current == ver {
						t.Errorf("CAS from version %d: %v", ver, err)
						return
					}
					conflicts.Add(1)
				}
			}
		})
	}
	wg.Wait()
	wantGet(t, c, "counter", strconv.Itoa(goroutines*increments))
	all := slices.Concat(results...)
	if len(all) != goroutines*increments {
		t.Fatalf("%d successful CAS, want %d", len(all), goroutines*increments)
	}
	slices.SortFunc(all, func(a, b write) int { return int(a.version) - int(b.version) })
	for i, w := range all {
		if w.version != all[0].version+uint64(i) || w.value != uint64(i+1) {
			t.Fatalf("CAS #%d: version %d value %d; want version %d value %d", i, w.version, w.value, all[0].version+uint64(i), i+1)
		}
	}
	st := c.Stats()
	if st.ConditionFailed != uint64(conflicts.Load()) || st.Puts != goroutines*increments {
		t.Fatalf("stats %+v, %d conflicts seen", st, conflicts.Load())
	}
	t.Logf("%d conflicts", conflicts.Load())
}

// TestPutIfAbsentHasOneWinner: racers on a fresh key, released together;
// exactly one IfAbsent (or IfVersion 0) write wins and the losers see its
// version.
func TestPutIfAbsentHasOneWinner(t *testing.T) {
	const racers, rounds = 16, 200
	c, _ := newTestCache(t, Config{})
	for round := range rounds {
		key := fmt.Sprint("race-", round)
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			winners  atomic.Int32
			winner   atomic.Uint64 // the winner's id+1
			winVer   atomic.Uint64
			loserCur = make([]uint64, racers)
		)
		for r := range racers {
			wg.Go(func() {
				opt := PutOptions{IfAbsent: true}
				if r%2 == 1 {
					opt = PutOptions{IfVersion: new(uint64(0))}
				}
				<-start
				v, err := c.Put(key, []byte(strconv.Itoa(r)), opt)
				var ce *ConditionError
				switch {
				case err == nil:
					winners.Add(1)
					winner.Store(uint64(r) + 1)
					winVer.Store(v)
				case errors.As(err, &ce):
					loserCur[r] = ce.Current
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d winners", round, n)
		}
		w := int(winner.Load() - 1)
		wantGet(t, c, key, strconv.Itoa(w))
		for r, cur := range loserCur {
			if r != w && cur != winVer.Load() {
				t.Fatalf("round %d: loser %d saw version %d, winner wrote %d", round, r, cur, winVer.Load())
			}
		}
	}
}
