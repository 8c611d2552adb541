package controlplane

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
)

// ErrRecreateRequired: a stream (or cache) change needs it deleted and
// created again, which the applier does only while it holds no data.
var ErrRecreateRequired = errors.New("change requires recreating the stream")

// RecreateRequiredError refuses a durability flip, or a durable stream's
// fsync or retention change, on a stream that already holds data.
type RecreateRequiredError struct {
	Key    StreamKey
	Reason string
}

func (e *RecreateRequiredError) Error() string {
	return fmt.Sprintf("stream %s: %s needs the stream recreated, and it holds data: delete and create it, or restart the broker for option changes", e.Key, e.Reason)
}

// Unwrap returns ErrRecreateRequired.
func (e *RecreateRequiredError) Unwrap() error { return ErrRecreateRequired }

// CacheRecreateRequiredError refuses a durability flip of a cache that
// holds entries, as RecreateRequiredError does a stream's.
type CacheRecreateRequiredError struct {
	Key    CacheKey
	Reason string
}

func (e *CacheRecreateRequiredError) Error() string {
	return fmt.Sprintf("cache %s: %s needs the cache recreated, and it holds entries: delete and create it", e.Key, e.Reason)
}

// Unwrap returns ErrRecreateRequired.
func (e *CacheRecreateRequiredError) Unwrap() error { return ErrRecreateRequired }

// CacheDir is where a durable cache's log lives (cache.Dir).
func CacheDir(dataDir string, s cache.Scope) string { return cache.Dir(dataDir, s) }

// StreamDir is where a durable stream's log lives: one escaped directory
// level per name part under <dataDir>/streams (the layout of felix serve).
func StreamDir(dataDir string, k broker.StreamKey) string {
	return commitlog.DirFor(dataDir, "streams", k.Tenant, k.Namespace, k.Stream)
}

// BrokerApplierOptions configure a BrokerApplier. Broker is required.
type BrokerApplierOptions struct {
	Broker *broker.Broker
	// Caches receives the caches. Default nil: cache changes fail (and
	// show in the follower's stats).
	Caches *cache.Store
	// DataDir keeps durable streams' logs (see StreamDir). Default "":
	// durable streams fail to apply.
	DataDir string
	// Log is the base of durable logs' options; each stream's fsync policy
	// and retention replace Sync, RetentionAge and RetentionBytes. Durable
	// caches take Sync (the broker's fsync policy), SyncInterval,
	// SegmentBytes, Logger and OnSync from it.
	Log commitlog.Options
	// Logger reports recreated streams and caches. Default slog.Default().
	Logger *slog.Logger
	// StreamsRemoved, when set, is called after streams were deleted from
	// the broker (and their logs removed), for the owners of per-stream
	// state kept elsewhere: serve passes the server's ForgetStreams, which
	// drops the streams' consumer groups.
	StreamsRemoved func([]broker.StreamKey)
	// LogOpened, when set, is called with a durable stream's log once it
	// is opened and before the stream is declared (so before anything is
	// published to it); an error fails the stream's creation and the log
	// is closed. serve passes server.ReconcileGroupStates, which makes the
	// stream's queue group state agree with the log's end.
	LogOpened func(broker.StreamKey, commitlog.Log) error
}

// BrokerApplier applies control-plane objects to a broker and a cache
// store.
//
// Streams: a new stream is declared in memory, or with a disk log in
// DataDir when durable. A durability flip, or a change of a durable
// stream's fsync or retention, takes a new stream: it is applied as delete
// and create only while the stream has no data (tail offset 0); otherwise
// EnsureStream fails with a *RecreateRequiredError and the follower keeps
// it as failed. Deleting a stream removes its log directory, but an
// in-memory stream made durable opens the directory of its name as it is:
// a durable log from before a restart keeps its records. Shards, kind,
// consistency and delivery are not acted on by the single-node broker.
//
// Caches: a new cache is created in memory, or — durable — loaded from
// its log in DataDir (CacheDir, the directory felix serve
// --durable-cache uses) synced by Log's policy. A capacity change resizes
// the cache in place, durable or not, keeping its entries (a lowered
// capacity evicts down to it, logged for a durable cache). A durability flip
// recreates the cache only while it holds no entry, as for streams;
// otherwise EnsureCache fails with a *CacheRecreateRequiredError. An
// in-memory cache made durable opens the directory of its name as it is,
// so a log from before a restart keeps its entries. Deleting a cache
// closes a durable one's log and removes its log directory.
type BrokerApplier struct {
	opts BrokerApplierOptions
	log  *slog.Logger

	mu      sync.Mutex
	applied map[StreamKey]Stream // the configuration each stream was created with
	caches  map[CacheKey]bool    // the caches the control plane declared (or adopted)
}

// NewBrokerApplier returns an applier for opts.Broker.
func NewBrokerApplier(opts BrokerApplierOptions) (*BrokerApplier, error) {
	if opts.Broker == nil {
		return nil, errors.New("controlplane: BrokerApplierOptions.Broker is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &BrokerApplier{opts: opts, log: opts.Logger, applied: map[StreamKey]Stream{}, caches: map[CacheKey]bool{}}, nil
}

func (k StreamKey) broker() broker.StreamKey {
	return broker.StreamKey{Tenant: k.TenantID, Namespace: k.Namespace, Stream: k.Stream}
}

// EnsureTenant declares the tenant.
func (a *BrokerApplier) EnsureTenant(t Tenant) error { return a.opts.Broker.CreateTenant(t.TenantID) }

// EnsureNamespace declares the tenant and namespace.
func (a *BrokerApplier) EnsureNamespace(n Namespace) error {
	if err := a.opts.Broker.CreateTenant(n.TenantID); err != nil {
		return err
	}
	return a.opts.Broker.CreateNamespace(n.TenantID, n.Namespace)
}

// EnsureStream declares the stream, or checks that the live one matches.
func (a *BrokerApplier) EnsureStream(s Stream) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := s.Key()
	cur, err := a.opts.Broker.Stream(k.TenantID, k.Namespace, k.Stream)
	if errors.Is(err, broker.ErrStreamNotFound) {
		return a.create(s)
	}
	if err != nil {
		return err
	}
	reason := ""
	prev, known := a.applied[k]
	switch {
	case cur.IsDurable() != s.Durable:
		reason = fmt.Sprintf("durable %v → %v", cur.IsDurable(), s.Durable)
	case s.Durable && known && prev.Fsync != s.Fsync:
		reason = fmt.Sprintf("fsync %s → %s", prev.Fsync, s.Fsync)
	case s.Durable && known && !sameRetention(prev.Retention, s.Retention):
		reason = "a retention change"
	}
	if reason == "" {
		a.applied[k] = s // adopts a stream declared elsewhere (flags)
		return nil
	}
	if cur.Tail() != 0 {
		return &RecreateRequiredError{Key: k, Reason: reason}
	}
	if cur.IsDurable() {
		err = a.deleteStream(k)
	} else {
		err = a.dropInMemory(k)
	}
	if err != nil {
		return err
	}
	a.log.Info("stream recreated for a control plane change", "stream", k.String(), "change", reason)
	return a.create(s)
}

// dropInMemory removes an in-memory stream from the broker for its
// durable replacement. The log directory of its name is not its own: it
// belongs to the durable stream (records and queue group state from
// before a restart, when a flag or an auto-create made the name in memory
// first), which create opens again. Called with a.mu held.
func (a *BrokerApplier) dropInMemory(k StreamKey) error {
	if err := a.opts.Broker.DeleteStream(k.TenantID, k.Namespace, k.Stream); err != nil && !errors.Is(err, broker.ErrStreamNotFound) {
		return err
	}
	delete(a.applied, k)
	return nil
}

func sameRetention(a, b Retention) bool {
	eq := func(x, y *int64) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return eq(a.MaxAgeSeconds, b.MaxAgeSeconds) && eq(a.MaxSizeBytes, b.MaxSizeBytes)
}

// create declares a new stream. Called with a.mu held.
func (a *BrokerApplier) create(s Stream) error {
	k := s.Key()
	if !s.Durable {
		if _, err := a.opts.Broker.DeclareStream(k.TenantID, k.Namespace, k.Stream); err != nil {
			return err
		}
		a.applied[k] = s
		return nil
	}
	if a.opts.DataDir == "" {
		return fmt.Errorf("stream %s: durable streams need a data directory", k)
	}
	lo := a.opts.Log
	var err error
	if lo.Sync, err = commitlog.ParseSyncPolicy(s.Fsync); err != nil {
		return fmt.Errorf("stream %s: %w", k, err)
	}
	lo.RetentionAge, lo.RetentionBytes = 0, 0
	if r := s.Retention.MaxAgeSeconds; r != nil {
		// A store written before MaxRetentionAgeSeconds was checked may
		// hold more: that is no limit, never a wrapped-around tiny one.
		lo.RetentionAge = time.Duration(min(*r, MaxRetentionAgeSeconds)) * time.Second
	}
	if r := s.Retention.MaxSizeBytes; r != nil {
		lo.RetentionBytes = *r
	}
	dir := StreamDir(a.opts.DataDir, k.broker())
	lg, err := commitlog.Open(dir, lo)
	if err != nil {
		return fmt.Errorf("stream %s: open log in %s: %w", k, dir, err)
	}
	if a.opts.LogOpened != nil {
		if err := a.opts.LogOpened(k.broker(), lg); err != nil {
			lg.Close()
			return fmt.Errorf("stream %s: %w", k, err)
		}
	}
	if _, err := a.opts.Broker.DeclareLoggedStream(k.TenantID, k.Namespace, k.Stream, broker.StreamOptions{Log: lg, Durable: true}); err != nil {
		lg.Close()
		return fmt.Errorf("stream %s: %w", k, err)
	}
	a.applied[k] = s
	return nil
}

// DeleteStream removes the stream and its log directory.
func (a *BrokerApplier) DeleteStream(k StreamKey) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.deleteStream(k)
}

func (a *BrokerApplier) deleteStream(k StreamKey) error {
	err := a.opts.Broker.DeleteStream(k.TenantID, k.Namespace, k.Stream)
	if err != nil && !errors.Is(err, broker.ErrStreamNotFound) {
		return err
	}
	a.forget([]broker.StreamKey{k.broker()})
	return nil
}

// forget drops the applied state and log directories of removed streams.
// Called with a.mu held.
func (a *BrokerApplier) forget(keys []broker.StreamKey) {
	if len(keys) > 0 && a.opts.StreamsRemoved != nil {
		defer a.opts.StreamsRemoved(keys)
	}
	for _, bk := range keys {
		delete(a.applied, StreamKey{bk.Tenant, bk.Namespace, bk.Stream})
		if a.opts.DataDir == "" {
			continue
		}
		if err := os.RemoveAll(StreamDir(a.opts.DataDir, bk)); err != nil {
			a.log.Error("removing a deleted stream's log", "stream", bk.String(), "err", err)
		}
	}
}

// DeleteNamespace removes the namespace's streams (with their logs) and
// caches: those the control plane declared or adopted. Streams and caches
// it did not (declared by the broker's own flags, or auto-created by a
// publish) stay, and so does the namespace while it holds any.
func (a *BrokerApplier) DeleteNamespace(k NamespaceKey) error {
	return a.deleteScope(func(tenant, ns string) bool { return tenant == k.TenantID && ns == k.Namespace },
		func() error {
			_, err := a.opts.Broker.DeleteNamespace(k.TenantID, k.Namespace)
			return err
		})
}

// DeleteTenant removes the tenant's streams (with their logs) and caches,
// as DeleteNamespace.
func (a *BrokerApplier) DeleteTenant(tenant string) error {
	return a.deleteScope(func(t, _ string) bool { return t == tenant },
		func() error {
			_, err := a.opts.Broker.DeleteTenant(tenant)
			return err
		})
}

// deleteScope deletes the applied streams and caches in scope, then, when
// the broker has no stream left in scope, the scope itself (dropScope).
func (a *BrokerApplier) deleteScope(in func(tenant, ns string) bool, dropScope func() error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.applied {
		if in(k.TenantID, k.Namespace) {
			if err := a.deleteStream(k); err != nil {
				return err
			}
		}
	}
	for k := range a.caches {
		if in(k.TenantID, k.Namespace) {
			if err := a.deleteCache(k); err != nil {
				return err
			}
		}
	}
	for _, st := range a.opts.Broker.Streams() {
		if k := st.Key(); in(k.Tenant, k.Namespace) {
			a.log.Info("kept a stream the control plane did not declare (the broker's flags did, or a publish auto-created it) in a scope the control plane deleted", "stream", k.String())
			return nil
		}
	}
	err := dropScope()
	if errors.Is(err, broker.ErrNamespaceNotFound) || errors.Is(err, broker.ErrTenantNotFound) {
		return nil
	}
	return err
}

func (k CacheKey) scope() cache.Scope {
	return cache.Scope{Tenant: k.TenantID, Namespace: k.Namespace, Cache: k.Cache}
}

// EnsureCache creates the cache, or makes the live one match: a capacity
// change resizes it in place (its entries kept, evicted down to a lowered
// capacity);
// a durability flip recreates it while it holds no entry, and fails with
// a *CacheRecreateRequiredError otherwise.
func (a *BrokerApplier) EnsureCache(c Cache) error {
	if a.opts.Caches == nil {
		return fmt.Errorf("cache %s: no cache store", c.Key())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k, scope := c.Key(), c.Key().scope()
	cur, err := a.opts.Caches.Get(scope)
	if err != nil {
		return a.createCache(c, false)
	}
	if cur.Durable() != c.Durable {
		reason := fmt.Sprintf("durable %v → %v", cur.Durable(), c.Durable)
		if holdsLiveEntry(cur) {
			return &CacheRecreateRequiredError{Key: k, Reason: reason}
		}
		if cur.Durable() {
			if err := a.deleteCache(k); err != nil {
				return err
			}
			err = a.createCache(c, false)
		} else {
			// In one step (a request in between must not find the scope
			// empty), and the log directory of its name is opened as it
			// is: a durable log from before a restart keeps its entries
			// (the in-memory cache was declared by a flag, or
			// auto-created, before the control plane was followed).
			err = a.createCache(c, true)
		}
		if err != nil {
			return err
		}
		a.log.Info("cache recreated for a control plane change", "cache", scope.String(), "change", reason)
		return nil
	}
	from := cur.Config().MaxBytes
	switch {
	case from == c.CapacityBytes:
		// Adopts a cache declared elsewhere (flags).
	default:
		// In place, durable or not: the entries stay (a lowered capacity
		// evicts down to it, logged for a durable cache), as Redis's
		// CONFIG SET maxmemory keeps the data.
		after, err := a.opts.Caches.Resize(scope, c.CapacityBytes)
		if err != nil {
			return fmt.Errorf("cache %s: resize: %w", k, err)
		}
		a.log.Info("cache resized; its entries were kept", "cache", scope.String(),
			"from", from, "to", c.CapacityBytes, "entries", after.Stats().Entries)
	}
	a.caches[k] = true
	return nil
}

// holdsLiveEntry reports whether c holds an entry that has not expired.
// Stats.Entries also counts the expired entries the sweep has not
// removed yet, which are never returned again: a cache holding only
// those is as empty for a durability flip. (A scan's first page of one
// key answers it: a pass over the keys, only when some are stored.)
func holdsLiveEntry(c *cache.Cache) bool {
	if c.Stats().Entries == 0 {
		return false
	}
	p, err := c.Scan(cache.ScanOptions{Limit: 1})
	return err != nil || len(p.Keys) > 0
}

// createCache creates c in memory, or loads it from its log in DataDir
// when durable; replace puts it in place of the in-memory cache under its
// scope (Store.ReplaceDurable). Called with a.mu held.
func (a *BrokerApplier) createCache(c Cache, replace bool) error {
	k, scope, cfg := c.Key(), c.Key().scope(), cache.Config{MaxBytes: c.CapacityBytes}
	if !c.Durable {
		if _, err := a.opts.Caches.Create(scope, cfg); err != nil {
			return err
		}
		a.caches[k] = true
		return nil
	}
	if a.opts.DataDir == "" {
		return fmt.Errorf("cache %s: durable caches need a data directory", k)
	}
	lo := a.opts.Log
	opts := cache.DurableOptions{Dir: CacheDir(a.opts.DataDir, scope), Sync: lo.Sync, SyncInterval: lo.SyncInterval,
		SegmentBytes: lo.SegmentBytes, Logger: cmp.Or(lo.Logger, a.log), OnSync: lo.OnSync}
	create := a.opts.Caches.CreateDurable
	if replace {
		create = a.opts.Caches.ReplaceDurable
	}
	start := time.Now()
	lc, err := create(scope, cfg, opts)
	if err != nil {
		return fmt.Errorf("cache %s: %w", k, err)
	}
	st := lc.Stats()
	a.log.Info("durable cache opened", "cache", scope.String(), "dir", opts.Dir, "max_bytes", cfg.MaxBytes,
		"entries", st.Entries, "log_bytes", st.LogBytes, "fsync", lo.Sync.String(),
		"load", time.Since(start).Round(time.Millisecond))
	a.caches[k] = true
	return nil
}

// DeleteCache removes the cache, and a durable one's log directory.
func (a *BrokerApplier) DeleteCache(k CacheKey) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.deleteCache(k)
}

// deleteCache removes the cache and the log directory of its name (as a
// deleted stream's), closing a durable cache's log first. Called with a.mu
// held.
func (a *BrokerApplier) deleteCache(k CacheKey) error {
	delete(a.caches, k)
	if a.opts.Caches == nil {
		return nil
	}
	scope := k.scope()
	err := a.opts.Caches.DeleteDurable(scope)
	switch {
	case err == nil, errors.Is(err, cache.ErrNotFound):
	case errors.Is(err, cache.ErrClosed):
		return err // shutting down: the store closes the log; its files stay
	default:
		// Unregistered; only closing its log failed.
		a.log.Error("closing a deleted cache's log", "cache", scope.String(), "err", err)
	}
	if a.opts.DataDir == "" {
		return nil
	}
	if err := os.RemoveAll(CacheDir(a.opts.DataDir, scope)); err != nil {
		a.log.Error("removing a deleted cache's log", "cache", scope.String(), "err", err)
	}
	return nil
}
