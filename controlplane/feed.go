package controlplane

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Change operations.
const (
	OpCreated = "created"
	OpUpdated = "updated"
	OpDeleted = "deleted"
)

// Key names any object in a change: TenantID always, Namespace for
// namespaces, streams and caches, Stream or Cache for those.
type Key struct {
	TenantID  string `json:"tenant_id"`
	Namespace string `json:"namespace,omitempty"`
	Stream    string `json:"stream,omitempty"`
	Cache     string `json:"cache,omitempty"`
}

// NamespaceKey returns the key's namespace part.
func (k Key) NamespaceKey() NamespaceKey { return NamespaceKey{k.TenantID, k.Namespace} }

// StreamKey returns the key as a stream key.
func (k Key) StreamKey() StreamKey { return StreamKey{k.TenantID, k.Namespace, k.Stream} }

// CacheKey returns the key as a cache key.
func (k Key) CacheKey() CacheKey { return CacheKey{k.TenantID, k.Namespace, k.Cache} }

// Change is one entry of the change log. Object is the object after the
// change (a Tenant, Namespace, Stream or Cache, per Kind), JSON null for
// deletes. Seq is global across kinds and strictly increasing, from 1.
type Change struct {
	Seq    uint64          `json:"seq"`
	Op     string          `json:"op"`   // OpCreated, OpUpdated or OpDeleted
	Kind   string          `json:"kind"` // ObjectTenant, ObjectNamespace, ObjectStream or ObjectCache
	Key    Key             `json:"key"`
	Object json.RawMessage `json:"object"`
}

// Snapshot is every object at one instant, and the seq of the first change
// after it: a reader follows the feed from NextSeq.
type Snapshot struct {
	StoreID    string      `json:"store_id"`
	Tenants    []Tenant    `json:"tenants"`
	Namespaces []Namespace `json:"namespaces"`
	Streams    []Stream    `json:"streams"`
	Caches     []Cache     `json:"caches"`
	NextSeq    uint64      `json:"next_seq"`
}

// ChangesPage is one page of the change feed. NextSeq is one past the last
// returned item (the since of the next page), or the requested since when
// the page is empty; a reader that pages with it never skips a change.
// More says whether changes at or after NextSeq already exist.
type ChangesPage struct {
	StoreID string   `json:"store_id"`
	Items   []Change `json:"items"`
	NextSeq uint64   `json:"next_seq"`
	More    bool     `json:"more"`
}

// Source is where a Follower reads the metadata: a *Store in process, or a
// control plane over HTTP (HTTPSource).
type Source interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
	// Changes returns up to limit changes with seq >= since, or an error
	// wrapping ErrResyncRequired.
	Changes(ctx context.Context, since uint64, limit int) (*ChangesPage, error)
}

// Snapshot reads every object and the feed position in one transaction.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap := &Snapshot{StoreID: s.id}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if snap.Tenants, err = list[Tenant](tx, bucketTenants, ""); err != nil {
			return err
		}
		if snap.Namespaces, err = list[Namespace](tx, bucketNamespaces, ""); err != nil {
			return err
		}
		if snap.Streams, err = list[Stream](tx, bucketStreams, ""); err != nil {
			return err
		}
		if snap.Caches, err = list[Cache](tx, bucketCaches, ""); err != nil {
			return err
		}
		snap.NextSeq = tx.Bucket(bucketChanges).Sequence() + 1
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// Changes returns up to limit changes with seq >= since (since 0 reads
// from the start of history, like 1). It fails with a *ResyncError when
// since is older than the oldest retained change or past the head.
func (s *Store) Changes(ctx context.Context, since uint64, limit int) (*ChangesPage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, &ValidationError{Field: "limit", Message: "must be positive"}
	}
	since = max(since, 1)
	page := &ChangesPage{StoreID: s.id, Items: []Change{}, NextSeq: since}
	err := s.view(func(tx *bolt.Tx) error {
		ch := tx.Bucket(bucketChanges)
		head := ch.Sequence()
		first := firstSeq(tx.Bucket(bucketMeta))
		if since < first || since > head+1 {
			return &ResyncError{Since: since, Oldest: first, Next: head + 1}
		}
		c := ch.Cursor()
		for k, v := c.Seek(seqKey(since)); k != nil && len(page.Items) < limit; k, v = c.Next() {
			var x Change
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("decode change %x: %w", k, err)
			}
			page.Items = append(page.Items, x)
			page.NextSeq = x.Seq + 1
		}
		page.More = page.NextSeq <= head
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}
