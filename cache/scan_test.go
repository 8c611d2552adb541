package cache

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scanAll pages through the scan of opt (its Cursor the start), checking
// each page's bound, and returns the keys in the order returned and the
// number of pages.
func scanAll(t *testing.T, c *Cache, opt ScanOptions) (keys []string, pages int) {
	t.Helper()
	for {
		p, err := c.Scan(opt)
		if err != nil {
			t.Fatalf("Scan %+v: %v", opt, err)
		}
		pages++
		if len(p.Keys) > max(opt.Limit, 1) && !(len(p.Keys) == 2 && p.Keys[0] == "") {
			t.Fatalf("page of %d keys over the limit %d: %q", len(p.Keys), opt.Limit, p.Keys)
		}
		if p.Cursor != "" && (len(p.Keys) == 0 || p.Cursor != p.Keys[len(p.Keys)-1]) {
			t.Fatalf("cursor %q is not the page's last key: %q", p.Cursor, p.Keys)
		}
		keys = append(keys, p.Keys...)
		if p.Cursor == "" {
			return keys, pages
		}
		if pages > 1_000_000 {
			t.Fatal("scan does not end")
		}
		opt.Cursor = p.Cursor
	}
}

// Every key comes exactly once, in byte order, over pages of the limit,
// whatever shards the keys are in.
func TestScanEveryKeyOnceInOrder(t *testing.T) {
	c, _ := newTestCache(t, Config{Shards: 16})
	var want []string
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i*7919%1000) // written out of order
		mustPut(t, c, k, "v", PutOptions{})
		want = append(want, k)
	}
	slices.Sort(want)
	for _, limit := range []int{1, 7, 100, 1000, 5000} {
		got, pages := scanAll(t, c, ScanOptions{Limit: limit})
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: got %d keys, want the %d in order", limit, len(got), len(want))
		}
		if wantPages := max((1000+limit-1)/limit, 1); pages != wantPages && pages != wantPages+1 {
			t.Fatalf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	if st := c.Stats(); st.Hits != 0 || st.Misses != 0 {
		t.Fatalf("a scan counted reads: %+v", st)
	}
}

// Keys present for the whole scan come exactly once while other keys are
// written and deleted around them, between and during pages.
func TestScanWithConcurrentWrites(t *testing.T) {
	c, _ := newTestCache(t, Config{Shards: 8})
	var stable []string
	for i := range 500 {
		k := fmt.Sprintf("key:%04d", i)
		mustPut(t, c, k, "v", PutOptions{})
		stable = append(stable, k)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Between and around the stable keys, in every shard.
				k := fmt.Sprintf("key:%04d-churn%d", (i*31+g*7)%500, g)
				if i%3 == 2 {
					c.Delete(k)
				} else if _, err := c.Put(k, []byte("x"), PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Put(fmt.Sprintf("key:%04d", (i+g)%500), []byte("w"), PutOptions{}); err != nil { // overwrite a stable key
					t.Error(err)
					return
				}
			}
		})
	}
	for range 5 {
		got, _ := scanAll(t, c, ScanOptions{Limit: 13})
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("keys not strictly increasing: a key came twice or out of order")
		}
		var kept []string
		for _, k := range got {
			if !strings.Contains(k, "churn") {
				kept = append(kept, k)
			}
		}
		if !slices.Equal(kept, stable) {
			t.Fatalf("the scan returned %d of the %d stable keys", len(kept), len(stable))
		}
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, c)
}

// A prefix keeps only its keys, whatever the cursor; a key written
// behind the cursor is not returned, one ahead of it is.
func TestScanPrefixAndCursor(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, k := range []string{"user:1", "user:2", "user:10", "use", "user", "order:1", "users", "v", "a"} {
		mustPut(t, c, k, "v", PutOptions{})
	}
	got, _ := scanAll(t, c, ScanOptions{Prefix: "user:", Limit: 2})
	if want := []string{"user:1", "user:10", "user:2"}; !slices.Equal(got, want) {
		t.Fatalf("prefix user: = %q, want %q", got, want)
	}
	if got, _ := scanAll(t, c, ScanOptions{Prefix: "user", Cursor: "a"}); !slices.Equal(got, []string{"user", "user:1", "user:10", "user:2", "users"}) {
		t.Fatalf("prefix user from cursor a: %q", got)
	}
	if got, _ := scanAll(t, c, ScanOptions{Prefix: "user:", Cursor: "zzz"}); len(got) != 0 {
		t.Fatalf("prefix user: from cursor zzz: %q", got)
	}
	p, err := c.Scan(ScanOptions{Prefix: "user:", Limit: 1})
	if err != nil || !slices.Equal(p.Keys, []string{"user:1"}) || p.Cursor != "user:1" {
		t.Fatalf("first page: %+v %v", p, err)
	}
	mustPut(t, c, "user:0", "v", PutOptions{})  // behind the cursor
	mustPut(t, c, "user:11", "v", PutOptions{}) // ahead
	rest, _ := scanAll(t, c, ScanOptions{Prefix: "user:", Limit: 1, Cursor: p.Cursor})
	if want := []string{"user:10", "user:11", "user:2"}; !slices.Equal(rest, want) {
		t.Fatalf("rest of the scan: %q, want %q", rest, want)
	}
}

// Expired keys are not returned, though a scan leaves their removal to
// the lazy expiry and the sweep.
func TestScanSkipsExpired(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	for i := range 20 {
		opt := PutOptions{}
		if i%2 == 0 {
			opt.TTL = new(time.Second)
		}
		mustPut(t, c, fmt.Sprintf("k%02d", i), "v", opt)
	}
	clk.Advance(time.Second)
	got, _ := scanAll(t, c, ScanOptions{Limit: 3})
	if len(got) != 10 {
		t.Fatalf("%d keys after half expired: %q", len(got), got)
	}
	for _, k := range got {
		var i int
		fmt.Sscanf(k, "k%d", &i)
		if i%2 == 0 {
			t.Fatalf("expired key %q returned", k)
		}
	}
	if st := c.Stats(); st.Entries != 20 {
		t.Fatalf("entries %d: a scan removed entries", st.Entries)
	}
}

// The empty key sorts first and never ends a page with more to come (its
// cursor would start over); limit below 1 counts as 1.
func TestScanEmptyKeyAndLimit(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, k := range []string{"", "a", "b"} {
		mustPut(t, c, k, "v", PutOptions{})
	}
	p, err := c.Scan(ScanOptions{Limit: 0})
	if err != nil || !slices.Equal(p.Keys, []string{"", "a"}) || p.Cursor != "a" {
		t.Fatalf("first page of limit 0: %+v %v", p, err)
	}
	p, err = c.Scan(ScanOptions{Limit: -5, Cursor: "a"})
	if err != nil || !slices.Equal(p.Keys, []string{"b"}) || p.Cursor != "" {
		t.Fatalf("second page: %+v %v", p, err)
	}
	c.Delete("b")
	c.Delete("a")
	if p, err := c.Scan(ScanOptions{Limit: 1}); err != nil || !slices.Equal(p.Keys, []string{""}) || p.Cursor != "" {
		t.Fatalf("only the empty key: %+v %v", p, err)
	}
	c.Delete("")
	if p, err := c.Scan(ScanOptions{}); err != nil || len(p.Keys) != 0 || p.Cursor != "" {
		t.Fatalf("empty cache: %+v %v", p, err)
	}
}

// MaxBytes bounds a page (its keys plus the cursor), which then stops
// early with a cursor that continues the scan; a key that cannot fit a
// page alone is refused.
func TestScanMaxBytes(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	var want []string
	for i := range 200 {
		k := fmt.Sprintf("%0*d", 1+i%40, i) // keys of 1 to 40 bytes
		mustPut(t, c, k, "v", PutOptions{})
		want = append(want, k)
	}
	slices.Sort(want)
	cost := func(k string) int { return len(k) + 3 }
	const maxBytes = 200
	var got []string
	opt := ScanOptions{Limit: 1000, MaxBytes: maxBytes, KeyBytes: cost}
	for pages := 0; ; pages++ {
		p, err := c.Scan(opt)
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		for _, k := range p.Keys {
			used += cost(k)
		}
		if p.Cursor != "" {
			used += cost(p.Cursor)
		}
		if used > maxBytes || len(p.Keys) == 0 && p.Cursor != "" {
			t.Fatalf("page of %d bytes over %d: %q", used, maxBytes, p.Keys)
		}
		got = append(got, p.Keys...)
		if p.Cursor == "" {
			if pages < 10 {
				t.Fatalf("%d pages: the bound did not cut them", pages)
			}
			break
		}
		opt.Cursor = p.Cursor
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}

	big := strings.Repeat("z", 100)
	mustPut(t, c, big, "v", PutOptions{})
	_, err := c.Scan(ScanOptions{Prefix: "zz", MaxBytes: maxBytes, KeyBytes: cost})
	var te *ScanKeyTooLargeError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &te) || te.Key != big || te.Size != 2*cost(big) {
		t.Fatalf("a key over half the page bound: %v", err)
	}
	// Without KeyBytes a key costs its length.
	if p, err := c.Scan(ScanOptions{Prefix: "zz", MaxBytes: 200}); err != nil || len(p.Keys) != 1 {
		t.Fatalf("the 100-byte key under a bound of 200 by its length: %+v %v", p, err)
	}
}

// The empty key cannot end a page with more to come (its cursor would
// start over), so the key after it must share its page. When the two do
// not fit MaxBytes together, though that key would fit alone, Scan fails
// with a *ScanKeyTooLargeError that says so: its Size counts the empty
// key, over MaxBytes (it said the key needed fewer bytes than the bound
// it was refused for). A page from a cursor past the empty key holds the
// key alone.
func TestScanEmptyKeyThenAKeyThatFitsOnlyAlone(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, k := range []string{"", "ab", "b"} {
		mustPut(t, c, k, "v", PutOptions{})
	}
	cost := func(k string) int { return len(k) + 3 }
	const maxBytes = 12 // "ab" and its cursor: 10; with "" before them: 13
	_, err := c.Scan(ScanOptions{Limit: 10, MaxBytes: maxBytes, KeyBytes: cost})
	var te *ScanKeyTooLargeError
	if !errors.As(err, &te) || te.Key != "ab" || te.Size <= te.MaxBytes || te.Size != cost("")+2*cost("ab") || !te.AfterEmptyKey {
		t.Fatalf("a page of the empty key and a key over the bound with it: %v (%+v)", err, te)
	}
	if !strings.Contains(err.Error(), "empty key") {
		t.Fatalf("the error does not say the empty key takes the room: %v", err)
	}
	p, err := c.Scan(ScanOptions{Limit: 10, MaxBytes: maxBytes, KeyBytes: cost, Cursor: "a"})
	if err != nil || !slices.Equal(p.Keys, []string{"ab"}) || p.Cursor != "ab" {
		t.Fatalf("from the cursor a: %+v %v", p, err)
	}
}

// A Limit near the largest int is a page as large as the cache, not a
// panic (Limit+2 overflowed to a negative heap size).
func TestScanHugeLimit(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, k := range []string{"", "a", "b"} {
		mustPut(t, c, k, "v", PutOptions{})
	}
	for _, limit := range []int{math.MaxInt, math.MaxInt - 1, math.MaxInt - 2} {
		p, err := c.Scan(ScanOptions{Limit: limit})
		if err != nil || !slices.Equal(p.Keys, []string{"", "a", "b"}) || p.Cursor != "" {
			t.Fatalf("limit %d: %+v %v", limit, p, err)
		}
	}
}

// A model check of whole scans over small key sets with the empty key
// among them, small limits and page bounds: every key comes exactly once
// and in order, and a scan fails only for a key that cannot fit a page
// (alone, or with the empty key before it when that opens the page).
func TestScanEmptyKeyModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cost := func(k string) int { return len(k) + 3 }
	for iter := range 2000 {
		c, _ := newTestCache(t, Config{Shards: 4})
		set := map[string]bool{}
		if r.IntN(2) == 0 {
			set[""] = true
		}
		for range r.IntN(6) {
			set[fmt.Sprintf("%c%d", 'a'+r.IntN(5), r.IntN(3))] = true
		}
		var want []string
		for k := range set {
			mustPut(t, c, k, "v", PutOptions{})
			want = append(want, k)
		}
		slices.Sort(want)
		opt := ScanOptions{Limit: r.IntN(4), KeyBytes: cost}
		if r.IntN(2) == 0 {
			opt.MaxBytes = 10 + r.IntN(20)
		}
		var got []string
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("iteration %d: the scan of %q does not end (%+v)", iter, want, opt)
			}
			p, err := c.Scan(opt)
			var te *ScanKeyTooLargeError
			if errors.As(err, &te) {
				if te.Size <= opt.MaxBytes {
					t.Fatalf("iteration %d: %v, though %d bytes fit the bound %d", iter, err, te.Size, opt.MaxBytes)
				}
				got = want // the scan stops at that key, as documented
				break
			}
			if err != nil {
				t.Fatalf("iteration %d: %v", iter, err)
			}
			got = append(got, p.Keys...)
			if p.Cursor == "" {
				break
			}
			opt.Cursor = p.Cursor
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d: got %q, want %q (%+v)", iter, got, want, opt)
		}
	}
}
