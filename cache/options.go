package cache

import (
	"fmt"
	"math/bits"
	"runtime"
	"time"
)

// Clock tells the time. Every expiry decision of a Store and its caches
// uses it, so tests inject a fake clock instead of sleeping.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Defaults and limits.
const (
	// DefaultSweepInterval is StoreOptions.SweepInterval's default.
	DefaultSweepInterval = time.Second
	// DefaultSweepMaxPerTick is StoreOptions.SweepMaxPerTick's default.
	DefaultSweepMaxPerTick = 10_000
	// DefaultMaxTotalBytes is StoreOptions.MaxTotalBytes's default, 1 GiB:
	// a cache has no capacity of its own by default (as Redis's maxmemory
	// 0), so this is what keeps all of them together from taking the
	// machine's memory.
	DefaultMaxTotalBytes = 1 << 30
	// DefaultEvictionSamples is Config.EvictionSamples's default.
	DefaultEvictionSamples = 5
	// MinDefaultShards is the least number of shards a cache gets by default.
	MinDefaultShards = 16
	// MaxShards bounds Config.Shards.
	MaxShards = 4096
	// EntryOverhead is the fixed number of bytes an entry accounts beyond
	// len(key)+len(value): its 64-byte slot (key and value headers, expiry,
	// version, recency tick) plus roughly 32 bytes of map entry.
	EntryOverhead = 96
)

// StoreOptions configure a Store. The zero value is valid; each field
// documents its default.
type StoreOptions struct {
	// Clock is the time source for TTLs. Default: the system clock.
	Clock Clock
	// SweepInterval is how often the background sweep runs. Default 1s.
	// Negative disables the background sweep (expiry is then lazy only,
	// unless Store.Sweep or Cache.Sweep is called).
	SweepInterval time.Duration
	// SweepMaxPerTick is the slots a sweep tick visits across all caches
	// (its budget; a shard with no slots counts as one). A tick goes on with more budgets while a quarter or
	// more of the slots visited held expired entries, for at most a tenth
	// of SweepInterval. Default 10_000.
	SweepMaxPerTick int
	// MaxTotalBytes bounds the bytes accounted to all the Store's caches
	// together (see EntryOverhead), as Redis's maxmemory bounds a
	// server's. A write that would take the total over it first evicts,
	// least recently used first, from the largest of the Store's caches
	// (of a few sampled at random when it has many; its own among them),
	// and from the others in turn when that one has nothing to give but
	// the key written, or is a durable cache whose log refuses the
	// eviction record (a full disk): another cache's storage error never
	// fails the write. Only when no entry of any cache can be evicted does
	// the write fail, with a *BudgetFullError (ErrBudgetFull, which also
	// matches ErrTooLarge). An entry larger than the bound is refused
	// with a *TooLargeError. Durable
	// caches count from the moment they are loaded; one loaded over the
	// bound makes later writes evict. Default DefaultMaxTotalBytes;
	// negative: no bound beyond each cache's MaxBytes.
	MaxTotalBytes int64
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.SweepMaxPerTick <= 0 {
		o.SweepMaxPerTick = DefaultSweepMaxPerTick
	}
	if o.MaxTotalBytes == 0 {
		o.MaxTotalBytes = DefaultMaxTotalBytes
	}
	return o
}

// Config configures one cache. The zero value is valid; each field documents
// its default. Create compares Configs after defaults are applied.
type Config struct {
	// MaxBytes bounds the cache's accounted size in bytes (see
	// EntryOverhead). Default 0: unbounded — nothing is ever evicted and
	// only expiry and deletes free memory.
	MaxBytes int64
	// Shards is the number of shards, rounded up to a power of two and
	// capped at MaxShards. Default max(16, GOMAXPROCS*4) rounded up.
	Shards int
	// EvictionSamples is how many entries eviction samples to pick the least
	// recently used one. Default 5; more is closer to true LRU and slower.
	EvictionSamples int
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.MaxBytes < 0 || c.Shards < 0 || c.EvictionSamples < 0 {
		return c, fmt.Errorf("%w: negative field in %+v", ErrInvalidConfig, c)
	}
	if c.Shards == 0 {
		c.Shards = max(MinDefaultShards, runtime.GOMAXPROCS(0)*4)
	}
	c.Shards = min(ceilPow2(c.Shards), MaxShards)
	if c.EvictionSamples == 0 {
		c.EvictionSamples = DefaultEvictionSamples
	}
	return c, nil
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// PutOptions qualify a Put. The zero value is an unconditional write that
// never expires.
type PutOptions struct {
	// TTL is the entry's time to live: nil never expires; zero or negative
	// expires at once (a Get right after the Put misses), as the wire's
	// ttl_ms 0. Write new(5*time.Second) for a literal.
	TTL *time.Duration
	// IfAbsent writes only if the key does not exist (or has expired).
	IfAbsent bool
	// IfVersion writes only if the key's current version equals
	// *IfVersion; 0 means the key must not exist. A compare-and-set.
	IfVersion *uint64
}

// Scope names a cache.
type Scope struct{ Tenant, Namespace, Cache string }

func (s Scope) String() string { return s.Tenant + "/" + s.Namespace + "/" + s.Cache }

func (s Scope) validate() error {
	if s.Tenant == "" || s.Namespace == "" || s.Cache == "" {
		return fmt.Errorf("%w: %q: tenant, namespace and cache must be non-empty", ErrInvalidScope, s.String())
	}
	return nil
}
