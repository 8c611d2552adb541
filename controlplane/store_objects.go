package controlplane

import (
	"errors"
	"reflect"

	bolt "go.etcd.io/bbolt"
)

func tenantKey(t string) string         { return t }
func nsKey(t, ns string) string         { return t + "/" + ns }
func leafKey(t, ns, name string) string { return t + "/" + ns + "/" + name }
func notFound(kind, key string) error   { return &NotFoundError{Kind: kind, Key: key} }
func existsErr(kind, key string) error  { return &ExistsError{Kind: kind, Key: key} }
func (k StreamKey) storeKey() string    { return leafKey(k.TenantID, k.Namespace, k.Stream) }
func (k CacheKey) storeKey() string     { return leafKey(k.TenantID, k.Namespace, k.Cache) }
func (k StreamKey) changeKey() Key {
	return Key{TenantID: k.TenantID, Namespace: k.Namespace, Stream: k.Stream}
}
func (k CacheKey) changeKey() Key {
	return Key{TenantID: k.TenantID, Namespace: k.Namespace, Cache: k.Cache}
}
func (k NamespaceKey) changeKey() Key           { return Key{TenantID: k.TenantID, Namespace: k.Namespace} }
func requireTenant(tx *bolt.Tx, t string) error { return require(tx, bucketTenants, ObjectTenant, t) }

func require(tx *bolt.Tx, bucket []byte, kind, key string) error {
	if !exists(tx, bucket, key) {
		return notFound(kind, key)
	}
	return nil
}

// CreateTenant adds a tenant; it fails with *ExistsError if it exists.
func (s *Store) CreateTenant(t Tenant) (Tenant, error) {
	if err := t.validate(); err != nil {
		return Tenant{}, err
	}
	err := s.update(func(w *wtx) error {
		if exists(w.tx, bucketTenants, t.TenantID) {
			return existsErr(ObjectTenant, t.TenantID)
		}
		if err := w.put(bucketTenants, t.TenantID, t); err != nil {
			return err
		}
		return w.record(OpCreated, ObjectTenant, Key{TenantID: t.TenantID}, t)
	})
	return t, err
}

// Tenant returns one tenant.
func (s *Store) Tenant(id string) (Tenant, error) {
	return getObj[Tenant](s, bucketTenants, ObjectTenant, tenantKey(id))
}

// Tenants lists every tenant, by id.
func (s *Store) Tenants() ([]Tenant, error) {
	p, err := s.TenantsPage(ListOptions{})
	return p.Items, err
}

// TenantsPage lists the tenants o selects, by id (byte order).
func (s *Store) TenantsPage(o ListOptions) (Page[Tenant], error) {
	var p Page[Tenant]
	err := s.view(func(tx *bolt.Tx) (err error) {
		p, err = listPage[Tenant](tx, bucketTenants, "", o)
		return err
	})
	return p, err
}

// DeleteTenant removes a tenant with its namespaces, streams and caches,
// recording a delete change for each (children first).
func (s *Store) DeleteTenant(id string) error {
	return s.update(func(w *wtx) error {
		if err := requireTenant(w.tx, id); err != nil {
			return err
		}
		for _, k := range keysWithPrefix(w.tx, bucketNamespaces, id+"/") {
			if err := w.deleteNamespace(NamespaceKey{id, k[len(id)+1:]}); err != nil {
				return err
			}
		}
		if err := w.del(bucketTenants, id); err != nil {
			return err
		}
		return w.record(OpDeleted, ObjectTenant, Key{TenantID: id}, nil)
	})
}

// CreateNamespace adds a namespace to an existing tenant.
func (s *Store) CreateNamespace(n Namespace) (Namespace, error) {
	if err := n.validate(); err != nil {
		return Namespace{}, s.legacyParent(err, n.TenantID, "")
	}
	err := s.update(func(w *wtx) error {
		if err := requireTenant(w.tx, n.TenantID); err != nil {
			return err
		}
		k := n.Key()
		if exists(w.tx, bucketNamespaces, k.String()) {
			return existsErr(ObjectNamespace, k.String())
		}
		if err := w.put(bucketNamespaces, k.String(), n); err != nil {
			return err
		}
		return w.record(OpCreated, ObjectNamespace, k.changeKey(), n)
	})
	return n, err
}

// Namespace returns one namespace.
func (s *Store) Namespace(k NamespaceKey) (Namespace, error) {
	return getObj[Namespace](s, bucketNamespaces, ObjectNamespace, k.String())
}

// Namespaces lists a tenant's namespaces.
func (s *Store) Namespaces(tenant string) ([]Namespace, error) {
	p, err := s.NamespacesPage(tenant, ListOptions{})
	return p.Items, err
}

// NamespacesPage lists the namespaces of a tenant o selects, by name
// (byte order). The tenant must exist.
func (s *Store) NamespacesPage(tenant string, o ListOptions) (Page[Namespace], error) {
	var p Page[Namespace]
	err := s.view(func(tx *bolt.Tx) (err error) {
		if err := requireTenant(tx, tenant); err != nil {
			return err
		}
		p, err = listPage[Namespace](tx, bucketNamespaces, tenant+"/", o)
		return err
	})
	return p, err
}

// DeleteNamespace removes a namespace with its streams and caches,
// recording a delete change for each (children first).
func (s *Store) DeleteNamespace(k NamespaceKey) error {
	return s.update(func(w *wtx) error {
		if err := require(w.tx, bucketNamespaces, ObjectNamespace, k.String()); err != nil {
			return err
		}
		return w.deleteNamespace(k)
	})
}

func (w *wtx) deleteNamespace(k NamespaceKey) error {
	prefix := k.String() + "/"
	for _, key := range keysWithPrefix(w.tx, bucketStreams, prefix) {
		if err := w.deleteLeaf(bucketStreams, key, ObjectStream, StreamKey{k.TenantID, k.Namespace, key[len(prefix):]}.changeKey()); err != nil {
			return err
		}
	}
	for _, key := range keysWithPrefix(w.tx, bucketCaches, prefix) {
		if err := w.deleteLeaf(bucketCaches, key, ObjectCache, CacheKey{k.TenantID, k.Namespace, key[len(prefix):]}.changeKey()); err != nil {
			return err
		}
	}
	return w.deleteLeaf(bucketNamespaces, k.String(), ObjectNamespace, k.changeKey())
}

func (w *wtx) deleteLeaf(bucket []byte, key, kind string, ck Key) error {
	if err := w.del(bucket, key); err != nil {
		return err
	}
	return w.record(OpDeleted, kind, ck, nil)
}

// leafRef locates a stream or cache in the store and in the feed.
type leafRef struct {
	bucket []byte
	kind   string
	key    string // store key, also the name in errors
	parent string // namespace store key
	change Key
}

func (k StreamKey) ref() leafRef {
	return leafRef{bucketStreams, ObjectStream, k.storeKey(), nsKey(k.TenantID, k.Namespace), k.changeKey()}
}

func (k CacheKey) ref() leafRef {
	return leafRef{bucketCaches, ObjectCache, k.storeKey(), nsKey(k.TenantID, k.Namespace), k.changeKey()}
}

// createLeaf stores a new stream or cache in an existing namespace.
func createLeaf[T any](s *Store, r leafRef, v T) (T, error) {
	err := s.update(func(w *wtx) error { return w.createLeaf(r, v) })
	return v, err
}

// createLeaf stores v, a new stream or cache, in an existing namespace.
func (w *wtx) createLeaf(r leafRef, v any) error {
	if err := require(w.tx, bucketNamespaces, ObjectNamespace, r.parent); err != nil {
		return err
	}
	if exists(w.tx, r.bucket, r.key) {
		return existsErr(r.kind, r.key)
	}
	if err := w.put(r.bucket, r.key, v); err != nil {
		return err
	}
	return w.record(OpCreated, r.kind, r.change, v)
}

// getObj reads one object.
func getObj[T any](s *Store, bucket []byte, kind, key string) (T, error) {
	var v T
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := get(tx, bucket, key, &v)
		if err == nil && !ok {
			err = notFound(kind, key)
		}
		return err
	})
	return v, err
}

// updateLeaf replaces a stream or cache with change(current). A change
// that leaves it as it is (an empty or no-op patch) writes nothing and
// records no change; the current object is returned.
func updateLeaf[T any](s *Store, r leafRef, change func(T) (T, error)) (T, error) {
	var v T
	err := s.update(func(w *wtx) error {
		ok, err := get(w.tx, r.bucket, r.key, &v)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(r.kind, r.key)
		}
		old := v
		if v, err = change(v); err != nil {
			return err
		}
		if reflect.DeepEqual(old, v) {
			return nil
		}
		if err := w.put(r.bucket, r.key, v); err != nil {
			return err
		}
		return w.record(OpUpdated, r.kind, r.change, v)
	})
	return v, err
}

// deleteLeafObj removes a stream or cache.
func (s *Store) deleteLeafObj(r leafRef) error {
	return s.update(func(w *wtx) error {
		if err := require(w.tx, r.bucket, r.kind, r.key); err != nil {
			return err
		}
		return w.deleteLeaf(r.bucket, r.key, r.kind, r.change)
	})
}

// CreateStream adds a stream to an existing namespace, with defaults
// filled in (see Stream). It returns the stored stream.
func (s *Store) CreateStream(st Stream) (Stream, error) {
	st = st.withDefaults()
	if err := st.validate(); err != nil {
		return Stream{}, s.legacyParent(err, st.TenantID, st.Namespace)
	}
	return createLeaf(s, st.Key().ref(), st)
}

// Stream returns one stream.
func (s *Store) Stream(k StreamKey) (Stream, error) {
	return getObj[Stream](s, bucketStreams, ObjectStream, k.storeKey())
}

// Streams lists a namespace's streams.
func (s *Store) Streams(k NamespaceKey) ([]Stream, error) {
	p, err := s.StreamsPage(k, ListOptions{})
	return p.Items, err
}

// StreamsPage lists the streams of a namespace o selects, by name (byte
// order). The namespace must exist.
func (s *Store) StreamsPage(k NamespaceKey, o ListOptions) (Page[Stream], error) {
	return listChildren[Stream](s, bucketStreams, k, o)
}

// UpdateStream applies p to a stream and returns the result.
// A patch that changes nothing (empty, or every field as it is) writes
// nothing and records no change.
func (s *Store) UpdateStream(k StreamKey, p StreamPatch) (Stream, error) {
	return updateLeaf(s, k.ref(), func(st Stream) (Stream, error) {
		if err := k.changeKey().validateNames(); err != nil {
			return st, legacyNameError(ObjectStream, k.String(), err)
		}
		st = p.apply(st)
		return st, st.validate()
	})
}

// DeleteStream removes a stream.
func (s *Store) DeleteStream(k StreamKey) error { return s.deleteLeafObj(k.ref()) }

// CreateCache adds a cache to an existing namespace.
func (s *Store) CreateCache(c Cache) (Cache, error) {
	if err := c.validate(); err != nil {
		return Cache{}, s.legacyParent(err, c.TenantID, c.Namespace)
	}
	return createLeaf(s, c.Key().ref(), c)
}

// Cache returns one cache.
func (s *Store) Cache(k CacheKey) (Cache, error) {
	return getObj[Cache](s, bucketCaches, ObjectCache, k.storeKey())
}

// Caches lists a namespace's caches.
func (s *Store) Caches(k NamespaceKey) ([]Cache, error) {
	p, err := s.CachesPage(k, ListOptions{})
	return p.Items, err
}

// CachesPage lists the caches of a namespace o selects, by name (byte
// order). The namespace must exist.
func (s *Store) CachesPage(k NamespaceKey, o ListOptions) (Page[Cache], error) {
	return listChildren[Cache](s, bucketCaches, k, o)
}

// UpdateCache applies p to a cache and returns the result.
// A patch that changes nothing (empty, or every field as it is) writes
// nothing and records no change.
func (s *Store) UpdateCache(k CacheKey, p CachePatch) (Cache, error) {
	return updateLeaf(s, k.ref(), func(c Cache) (Cache, error) {
		if err := k.changeKey().validateNames(); err != nil {
			return c, legacyNameError(ObjectCache, k.String(), err)
		}
		c = p.apply(c)
		return c, c.validate()
	})
}

// DeleteCache removes a cache.
func (s *Store) DeleteCache(k CacheKey) error { return s.deleteLeafObj(k.ref()) }

// listChildren lists the objects of a namespace, which must exist, that
// o selects.
func listChildren[T any](s *Store, bucket []byte, k NamespaceKey, o ListOptions) (Page[T], error) {
	var p Page[T]
	err := s.view(func(tx *bolt.Tx) (err error) {
		if err := require(tx, bucketNamespaces, ObjectNamespace, k.String()); err != nil {
			return err
		}
		p, err = listPage[T](tx, bucket, k.String()+"/", o)
		return err
	})
	return p, err
}

// legacyParent explains a create refused for its parent's name (err on
// field tenant_id or namespace) when that parent exists: an older version
// with looser name rules made it (see legacyNameError).
func (s *Store) legacyParent(err error, tenant, ns string) error {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var kind, key string
	var bucket []byte
	switch {
	case ve.Field == "tenant_id":
		kind, key, bucket = ObjectTenant, tenant, bucketTenants
	case ve.Field == "namespace" && ns != "":
		kind, key, bucket = ObjectNamespace, nsKey(tenant, ns), bucketNamespaces
	default:
		return err
	}
	found := false
	if s.view(func(tx *bolt.Tx) error { found = exists(tx, bucket, key); return nil }) != nil || !found {
		return err
	}
	return legacyNameError(kind, key, ve)
}
