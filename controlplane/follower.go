package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Applier makes a broker match the control plane. Every method is
// idempotent: Ensure* creates or updates, Delete* of an absent object
// succeeds. Deleting a namespace or tenant removes everything under it.
type Applier interface {
	EnsureTenant(Tenant) error
	EnsureNamespace(Namespace) error
	EnsureStream(Stream) error
	EnsureCache(Cache) error
	DeleteStream(StreamKey) error
	DeleteCache(CacheKey) error
	DeleteNamespace(NamespaceKey) error
	DeleteTenant(tenantID string) error
}

// DefaultSyncInterval is FollowerOptions.SyncInterval's default.
const DefaultSyncInterval = 2 * time.Second

// FollowerOptions configure a Follower. Source and Applier are required;
// every other field's zero value is safe.
type FollowerOptions struct {
	// Source is the control plane: NewHTTPSource for a remote one, or the
	// *Store itself in process. Required.
	Source Source
	// Applier receives the changes. Required.
	Applier Applier
	// SyncInterval is the polling period of Run. Default 2s.
	SyncInterval time.Duration
	// PageLimit is the page size asked of the change feed. Default 1000.
	PageLimit int
	// NewTicker makes Run's ticker; tests inject their own. Default: a
	// time.Ticker.
	NewTicker func(d time.Duration) (tick <-chan time.Time, stop func())
	// Now timestamps Stats. Default time.Now.
	Now func() time.Time
	// Logger receives sync and apply failures. Default slog.Default().
	Logger *slog.Logger
}

// maxResyncsPerSync bounds the snapshots one Sync takes when the feed keeps
// moving past its retention faster than the follower can read it.
const maxResyncsPerSync = 3

// objRef names an object of any kind.
type objRef struct {
	kind string
	key  Key
}

// failure is an object whose last application failed.
type failure struct {
	err      string
	attempts int
	since    time.Time
}

// desired is the control plane's state as of the follower's feed position.
type desired struct {
	tenants    map[string]Tenant
	namespaces map[NamespaceKey]Namespace
	streams    map[StreamKey]Stream
	caches     map[CacheKey]Cache
}

func newDesired() *desired {
	return &desired{tenants: map[string]Tenant{}, namespaces: map[NamespaceKey]Namespace{},
		streams: map[StreamKey]Stream{}, caches: map[CacheKey]Cache{}}
}

// Follower keeps a broker in step with the control plane: a snapshot
// first, then the change feed page by page, each change applied through
// the Applier.
//
// Failures. A change that fails to apply does not stop the feed: the
// follower moves on to later changes and remembers the object (not the
// change) as failed. At the end of each Sync it retries every failed object
// by applying the object's latest desired state, so a later change to the
// same object supersedes the failed one and unrelated objects are never
// held back. Failed objects are listed in Stats until they apply; a failure
// is logged when it first happens or its error changes.
type Follower struct {
	opts FollowerOptions
	log  *slog.Logger

	syncMu  sync.Mutex // one Sync at a time; guards the fields below
	want    *desired
	seeded  bool
	storeID string
	next    uint64
	// last is the last change applied (its JSON), when it is the one
	// just before next: the first page of each Sync re-reads it to check
	// that the control plane's history still holds it (see sync).
	last    []byte
	lastSeq uint64

	ready     atomic.Bool
	readyOnce sync.Once
	readyC    chan struct{} // closed with the first completed Sync

	statsMu sync.Mutex
	stats   FollowerStats
	failed  map[objRef]*failure
}

// FollowerStats is a point-in-time view of a Follower.
type FollowerStats struct {
	Ready      bool   // the first full sync completed
	StoreID    string // the control plane store followed
	NextSeq    uint64 // the next change to read
	Syncs      uint64 // completed Sync calls
	SyncErrors uint64 // Sync calls that failed (source unreachable, ...)
	Resyncs    uint64 // snapshots taken after the first (410 or store replaced)
	// Kept counts objects a resync found missing from a control plane
	// whose history changed (store replaced, restored from an older
	// backup): they were left in the broker, with their data, not
	// deleted (see sync).
	Kept uint64
	// Skipped counts objects the follower did not apply and will not
	// retry: objects whose name (or a parent's) the broker refuses, made
	// under an older version's looser name rules, and changes it does
	// not understand. Each is logged at warn level (error for changes).
	// Their deletes are applied.
	Skipped     uint64
	Applied     uint64    // successful Applier calls
	ApplyErrors uint64    // failed Applier calls, retries included
	LastSync    time.Time // end of the last completed Sync
	LastError   string    // the last Sync error, "" after a success
	Failed      []FailedObject
}

// FailedObject is an object the broker does not match yet.
type FailedObject struct {
	Kind     string // ObjectTenant, ObjectNamespace, ObjectStream or ObjectCache
	Key      Key
	Error    string
	Attempts int
	Since    time.Time
}

// NewFollower returns a follower; call Run, or Sync by hand.
func NewFollower(opts FollowerOptions) (*Follower, error) {
	if opts.Source == nil || opts.Applier == nil {
		return nil, errors.New("controlplane: FollowerOptions.Source and Applier are required")
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.PageLimit <= 0 {
		opts.PageLimit = DefaultChangesLimit
	}
	if opts.NewTicker == nil {
		opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Follower{opts: opts, log: opts.Logger, want: newDesired(), failed: map[objRef]*failure{}, readyC: make(chan struct{})}, nil
}

// Ready reports whether the first full sync (snapshot and feed caught up)
// has completed. Objects may still be failing: see Stats.
func (f *Follower) Ready() bool { return f.ready.Load() }

// ReadyC is closed when Ready becomes true.
func (f *Follower) ReadyC() <-chan struct{} { return f.readyC }

// Stats returns the follower's counters and failing objects (sorted).
func (f *Follower) Stats() FollowerStats {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	st := f.stats
	st.Ready = f.ready.Load()
	st.Failed = make([]FailedObject, 0, len(f.failed))
	for ref, fl := range f.failed {
		st.Failed = append(st.Failed, FailedObject{Kind: ref.kind, Key: ref.key, Error: fl.err, Attempts: fl.attempts, Since: fl.since})
	}
	sort.Slice(st.Failed, func(i, j int) bool {
		a, b := st.Failed[i], st.Failed[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return fmt.Sprint(a.Key) < fmt.Sprint(b.Key)
	})
	return st
}

// notifier is a Source that can wake Run at once (a *Store does).
type notifier interface{ Changed() <-chan struct{} }

// Run syncs now and then every SyncInterval (and, with a *Store as Source,
// at every committed change) until ctx ends. Sync errors are logged and
// retried at the next tick. It returns ctx.Err().
func (f *Follower) Run(ctx context.Context) error {
	tick, stop := f.opts.NewTicker(f.opts.SyncInterval)
	defer stop()
	for {
		var wake <-chan struct{}
		if n, ok := f.opts.Source.(notifier); ok {
			wake = n.Changed() // taken before Sync, so no change is missed
		}
		if err := f.Sync(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("control plane sync failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		case <-wake:
		}
	}
}

// Sync brings the broker up to date: a snapshot if none was taken yet (or
// the feed asks for a resync), then change pages until caught up, then a
// retry of failed objects.
func (f *Follower) Sync(ctx context.Context) error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	err := f.sync(ctx)
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	f.stats.StoreID, f.stats.NextSeq = f.storeID, f.next
	if err != nil {
		f.stats.SyncErrors++
		f.stats.LastError = err.Error()
		return err
	}
	f.stats.Syncs++
	f.stats.LastError = ""
	f.stats.LastSync = f.opts.Now()
	f.ready.Store(true)
	f.readyOnce.Do(func() { close(f.readyC) })
	return nil
}

func (f *Follower) sync(ctx context.Context) error {
	attempted := map[objRef]bool{}
	if !f.seeded {
		if err := f.resnapshot(ctx, attempted, false); err != nil {
			return err
		}
	}
	resyncs := 0
	for first := true; ; first = false {
		// The first page starts one change early, at the last change
		// applied, when there is one: a control plane restored from an
		// older backup that has taken new writes since serves other
		// changes under the same seqs, and only this tells.
		since, check := f.next, first && f.last != nil && f.lastSeq+1 == f.next
		if check {
			since = f.lastSeq
		}
		page, err := f.opts.Source.Changes(ctx, since, f.opts.PageLimit)
		diverged := false
		if err == nil && page.StoreID != f.storeID {
			err = fmt.Errorf("%w: control plane store changed from %s to %s", ErrResyncRequired, f.storeID, page.StoreID)
		}
		if err == nil && check {
			if len(page.Items) == 0 || page.Items[0].Seq != f.lastSeq || !bytes.Equal(changeJSON(page.Items[0]), f.last) {
				diverged = true
				err = fmt.Errorf("%w: the control plane no longer holds change %d as applied: its history changed (restored from a backup?)", ErrResyncRequired, f.lastSeq)
			} else {
				page.Items = page.Items[1:]
			}
		}
		if errors.Is(err, ErrResyncRequired) {
			if resyncs++; resyncs > maxResyncsPerSync {
				return fmt.Errorf("changes since %d: %w (gave up after %d snapshots)", f.next, err, maxResyncsPerSync)
			}
			f.log.Info("control plane feed asks for a resync", "since", f.next, "reason", err)
			f.countResync()
			if err := f.resnapshot(ctx, attempted, diverged); err != nil {
				return err
			}
			first = false // no overlap check right after a snapshot: nothing applied yet
			continue
		}
		if err != nil {
			return fmt.Errorf("changes since %d: %w", since, err)
		}
		for _, c := range page.Items {
			f.applyChange(c, attempted)
		}
		if page.NextSeq > f.next {
			f.next = page.NextSeq
		}
		if !page.More || page.NextSeq <= since {
			break
		}
	}
	f.retryFailed(attempted)
	return nil
}

// changeJSON is c's canonical JSON, to compare a change read twice.
func changeJSON(c Change) []byte {
	b, _ := json.Marshal(c) // a decoded Change always marshals
	return b
}

func (f *Follower) countResync() {
	f.statsMu.Lock()
	f.stats.Resyncs++
	f.statsMu.Unlock()
}

// resnapshot replaces the desired state with a snapshot: objects that are
// gone are deleted (children first), then every object is ensured.
//
// Unless the control plane's history changed: when the snapshot comes from
// another store (replaced, or started on an empty data dir), from the same
// store further back than the follower already read (restored from an
// older backup), or diverged says the feed no longer holds the changes
// applied, an object missing from it is not evidence that anyone deleted
// it. Such objects are kept in the broker with their data (logged and
// counted in Stats.Kept), no longer followed: deleting a durable stream's
// log on such a resync would lose data nobody asked to delete.
func (f *Follower) resnapshot(ctx context.Context, attempted map[objRef]bool, diverged bool) error {
	snap, err := f.opts.Source.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	keep := f.seeded && (diverged || snap.StoreID != f.storeID || snap.NextSeq < f.next)
	old, now := f.want, newDesired()
	for _, t := range snap.Tenants {
		now.tenants[t.TenantID] = t
	}
	for _, n := range snap.Namespaces {
		now.namespaces[n.Key()] = n
	}
	for _, s := range snap.Streams {
		now.streams[s.Key()] = s
	}
	for _, c := range snap.Caches {
		now.caches[c.Key()] = c
	}
	f.want = now
	var refs []objRef // deletions first, children before parents
	for k := range old.streams {
		if _, ok := now.streams[k]; !ok {
			refs = append(refs, objRef{ObjectStream, k.changeKey()})
		}
	}
	for k := range old.caches {
		if _, ok := now.caches[k]; !ok {
			refs = append(refs, objRef{ObjectCache, k.changeKey()})
		}
	}
	for k := range old.namespaces {
		if _, ok := now.namespaces[k]; !ok {
			refs = append(refs, objRef{ObjectNamespace, k.changeKey()})
		}
	}
	for k := range old.tenants {
		if _, ok := now.tenants[k]; !ok {
			refs = append(refs, objRef{ObjectTenant, Key{TenantID: k}})
		}
	}
	if keep {
		f.keep(refs, snap, diverged)
		refs = refs[:0]
	}
	for _, t := range snap.Tenants {
		refs = append(refs, objRef{ObjectTenant, Key{TenantID: t.TenantID}})
	}
	for _, n := range snap.Namespaces {
		refs = append(refs, objRef{ObjectNamespace, n.Key().changeKey()})
	}
	for _, s := range snap.Streams {
		refs = append(refs, objRef{ObjectStream, s.Key().changeKey()})
	}
	for _, c := range snap.Caches {
		refs = append(refs, objRef{ObjectCache, c.Key().changeKey()})
	}
	for _, ref := range refs {
		f.reconcile(ref, attempted)
	}
	f.seeded, f.storeID, f.next = true, snap.StoreID, snap.NextSeq
	f.last, f.lastSeq = nil, 0
	return nil
}

// keep leaves the objects of refs in the broker after a resync on a
// changed history, and stops following them.
func (f *Follower) keep(refs []objRef, snap *Snapshot, diverged bool) {
	if len(refs) == 0 {
		return
	}
	why := "the control plane store was replaced"
	switch {
	case diverged:
		why = "the control plane's change history diverged from what was applied (restored from a backup?)"
	case snap.StoreID == f.storeID:
		why = "the control plane went back in time (restored from an older backup?)"
	}
	shown := make([]string, 0, min(len(refs), 20))
	for _, r := range refs[:cap(shown)] {
		shown = append(shown, r.kind+" "+r.String())
	}
	f.log.Error("control plane no longer declares objects this broker has; keeping them and their data instead of deleting them: delete them through the API once declared again, or by hand",
		"reason", why, "store_id", snap.StoreID, "next_seq", snap.NextSeq, "previous_store_id", f.storeID, "previous_next_seq", f.next,
		"count", len(refs), "objects", shown)
	f.statsMu.Lock()
	f.stats.Kept += uint64(len(refs))
	for _, r := range refs {
		delete(f.failed, r) // a retry would delete it
	}
	f.statsMu.Unlock()
}

func (r objRef) String() string {
	switch {
	case r.key.Stream != "":
		return r.key.StreamKey().String()
	case r.key.Cache != "":
		return r.key.CacheKey().String()
	case r.key.Namespace != "":
		return r.key.NamespaceKey().String()
	}
	return r.key.TenantID
}

// applyChange updates the desired state with c and applies it.
func (f *Follower) applyChange(c Change, attempted map[objRef]bool) {
	ref := objRef{c.Kind, c.Key}
	f.last, f.lastSeq = changeJSON(c), c.Seq
	if err := f.want.update(c); err != nil {
		f.log.Error("control plane change not understood; skipped", "seq", c.Seq, "kind", c.Kind, "err", err)
		f.statsMu.Lock()
		f.stats.Skipped++
		f.statsMu.Unlock()
		return
	}
	f.reconcile(ref, attempted)
}

// update applies c to the desired state.
func (d *desired) update(c Change) error {
	del := c.Op == OpDeleted
	var err error
	switch c.Kind {
	case ObjectTenant:
		err = set(d.tenants, c.Key.TenantID, c.Object, del)
	case ObjectNamespace:
		err = set(d.namespaces, c.Key.NamespaceKey(), c.Object, del)
	case ObjectStream:
		err = set(d.streams, c.Key.StreamKey(), c.Object, del)
	case ObjectCache:
		err = set(d.caches, c.Key.CacheKey(), c.Object, del)
	default:
		err = fmt.Errorf("unknown kind %q", c.Kind)
	}
	return err
}

func set[K comparable, V any](m map[K]V, k K, obj json.RawMessage, del bool) error {
	if del {
		delete(m, k)
		return nil
	}
	var v V
	if err := json.Unmarshal(obj, &v); err != nil {
		return err
	}
	m[k] = v
	return nil
}

// reconcile makes the broker match the desired state of one object.
func (f *Follower) reconcile(ref objRef, attempted map[objRef]bool) {
	attempted[ref] = true
	a, d, k := f.opts.Applier, f.want, ref.key
	if f.refused(ref) {
		return
	}
	var err error
	switch ref.kind {
	case ObjectTenant:
		if t, ok := d.tenants[k.TenantID]; ok {
			err = a.EnsureTenant(t)
		} else {
			err = a.DeleteTenant(k.TenantID)
		}
	case ObjectNamespace:
		if n, ok := d.namespaces[k.NamespaceKey()]; ok {
			err = a.EnsureNamespace(n)
		} else {
			err = a.DeleteNamespace(k.NamespaceKey())
		}
	case ObjectStream:
		if s, ok := d.streams[k.StreamKey()]; ok {
			err = a.EnsureStream(s)
		} else {
			err = a.DeleteStream(k.StreamKey())
		}
	case ObjectCache:
		if c, ok := d.caches[k.CacheKey()]; ok {
			err = a.EnsureCache(c)
		} else {
			err = a.DeleteCache(k.CacheKey())
		}
	}
	f.track(ref, err)
}

// refused skips ref when the control plane declares it under a name the
// broker refuses (made under an older version's looser name rules): it is
// logged, counted in Stats.Skipped and not retried, so it neither holds
// the feed nor fills Failed. Its delete still goes through: deletes take
// any name, and remove what an older broker may have left (a log
// directory).
func (f *Follower) refused(ref objRef) bool {
	if !f.want.has(ref) {
		return false
	}
	err := ref.key.validateNames()
	if err == nil {
		return false
	}
	f.log.Warn("control plane object has a name this broker refuses (made by an older version?); skipped: create it again under a valid name and delete this one through the API",
		"kind", ref.kind, "key", ref.String(), "err", err)
	f.statsMu.Lock()
	f.stats.Skipped++
	delete(f.failed, ref)
	f.statsMu.Unlock()
	return true
}

// has reports whether the desired state declares ref.
func (d *desired) has(ref objRef) bool {
	var ok bool
	switch k := ref.key; ref.kind {
	case ObjectTenant:
		_, ok = d.tenants[k.TenantID]
	case ObjectNamespace:
		_, ok = d.namespaces[k.NamespaceKey()]
	case ObjectStream:
		_, ok = d.streams[k.StreamKey()]
	case ObjectCache:
		_, ok = d.caches[k.CacheKey()]
	}
	return ok
}

// track records the outcome of applying ref.
func (f *Follower) track(ref objRef, err error) {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	if err == nil {
		f.stats.Applied++
		delete(f.failed, ref)
		return
	}
	f.stats.ApplyErrors++
	fl := f.failed[ref]
	if fl == nil {
		fl = &failure{since: f.opts.Now()}
		f.failed[ref] = fl
	}
	fl.attempts++
	if msg := err.Error(); msg != fl.err {
		fl.err = msg
		f.log.Warn("control plane change not applied; will retry", "kind", ref.kind, "key", ref.key, "err", err)
	}
}

// retryFailed re-applies failed objects not already attempted this Sync,
// children of the hierarchy after their parents.
func (f *Follower) retryFailed(attempted map[objRef]bool) {
	f.statsMu.Lock()
	var refs []objRef
	for ref := range f.failed {
		if !attempted[ref] {
			refs = append(refs, ref)
		}
	}
	f.statsMu.Unlock()
	rank := map[string]int{ObjectTenant: 0, ObjectNamespace: 1, ObjectStream: 2, ObjectCache: 2}
	sort.SliceStable(refs, func(i, j int) bool { return rank[refs[i].kind] < rank[refs[j].kind] })
	for _, ref := range refs {
		f.reconcile(ref, attempted)
	}
}
