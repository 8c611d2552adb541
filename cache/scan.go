package cache

import (
	"container/heap"
	"math"
	"slices"
	"strings"
)

// ScanOptions select one page of Scan.
type ScanOptions struct {
	// Prefix keeps the keys that start with it ("" keeps all).
	Prefix string
	// Cursor keeps the keys after it in byte order; "" starts the scan.
	// The cursor of a page is its last key.
	Cursor string
	// Limit is the most keys a page holds; below 1 counts as 1.
	Limit int
	// MaxBytes bounds a page: the sum of KeyBytes over its keys, plus
	// KeyBytes of its cursor (which repeats the last key), stays within
	// it. 0 means no bound.
	MaxBytes int
	// KeyBytes is what a key costs a page (a server passes the size of
	// its encoding). nil counts len(key).
	KeyBytes func(key string) int
}

// ScanPage is one page of a scan.
type ScanPage struct {
	// Keys are live keys with the prefix, after the cursor, in byte order.
	Keys []string
	// Cursor continues the scan (the last of Keys); "" when it is done.
	Cursor string
}

// Scan returns the page of opt.Limit smallest live keys (by bytes) that
// start with opt.Prefix and sort after opt.Cursor: Redis's SCAN with
// MATCH prefix*. Starting from the cursor "" and passing each page's
// cursor to the next call until it is "", a scan returns every key that
// was live throughout it, exactly once and in order; a key written or
// removed meanwhile may or may not appear; an expired key never does.
//
// A page visits every shard in turn, holding that shard's read lock only
// while it looks through the shard's keys, keeping the smallest ones in a
// heap of Limit+2 keys: a page costs a pass over the cache's keys
// (O(n log Limit)), as Redis's KEYS does, so a whole scan costs about n²
// / Limit; ask for large pages. It removes nothing and counts no hit or
// miss.
//
// A page stops early to stay within opt.MaxBytes; if its first key alone
// exceeds it, Scan fails with a *ScanKeyTooLargeError (ErrTooLarge). The
// empty key, which sorts first, never ends a page that has more to come
// (the cursor "" would start over): the key after it joins the page
// beyond Limit, and if the two together exceed opt.MaxBytes, Scan fails
// with a *ScanKeyTooLargeError naming that key, AfterEmptyKey set.
func (c *Cache) Scan(opt ScanOptions) (ScanPage, error) {
	// The heap holds Limit+2 keys: a bound that keeps that an int.
	limit := min(max(opt.Limit, 1), math.MaxInt-2)
	smallest := c.smallestKeys(opt.Prefix, opt.Cursor, limit+2)
	size := opt.KeyBytes
	if size == nil {
		size = func(key string) int { return len(key) }
	}
	n, used := 0, 0
	for n < len(smallest) {
		k := smallest[n]
		afterEmpty := n > 0 && smallest[n-1] == ""
		if n >= limit && !afterEmpty {
			break
		}
		cost := size(k)
		if opt.MaxBytes > 0 && used+2*cost > opt.MaxBytes {
			if n == 0 || afterEmpty { // used: the empty key's, which cannot end the page
				return ScanPage{}, &ScanKeyTooLargeError{Key: k, Size: used + 2*cost, MaxBytes: opt.MaxBytes, AfterEmptyKey: afterEmpty}
			}
			break
		}
		used += cost
		n++
	}
	page := ScanPage{Keys: smallest[:n:n]}
	if n < len(smallest) {
		page.Cursor = smallest[n-1]
	}
	return page, nil
}

// smallestKeys returns, sorted, the n smallest live keys that start with
// prefix and sort after cursor ("": every key), across all shards.
func (c *Cache) smallestKeys(prefix, cursor string, n int) []string {
	h := make(keyHeap, 0, min(n, 1024))
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		now, haveNow := int64(0), false
		for key, j := range s.index {
			if !strings.HasPrefix(key, prefix) || (cursor != "" && key <= cursor) || (len(h) == n && key >= h[0]) {
				continue
			}
			if e := s.slots[j].expires; e != never {
				if !haveNow {
					now, haveNow = c.now(), true
				}
				if e <= now {
					continue
				}
			}
			if len(h) < n {
				heap.Push(&h, key)
			} else {
				h[0] = key
				heap.Fix(&h, 0)
			}
		}
		s.mu.RUnlock()
	}
	slices.Sort(h)
	return h
}

// keyHeap is a max-heap of keys: its root is the largest kept.
type keyHeap []string

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
