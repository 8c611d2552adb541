package controlplane

import (
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
	var t Tenant
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := get(tx, bucketTenants, tenantKey(id), &t)
		if err == nil && !ok {
			err = notFound(ObjectTenant, id)
		}
		return err
	})
	return t, err
}

// Tenants lists every tenant, by id.
func (s *Store) Tenants() ([]Tenant, error) {
	var out []Tenant
	err := s.view(func(tx *bolt.Tx) (err error) {
		out, err = list[Tenant](tx, bucketTenants, "")
		return err
	})
	return out, err
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
		if err := w.tx.Bucket(bucketTenants).Delete([]byte(id)); err != nil {
			return err
		}
		return w.record(OpDeleted, ObjectTenant, Key{TenantID: id}, nil)
	})
}

// CreateNamespace adds a namespace to an existing tenant.
func (s *Store) CreateNamespace(n Namespace) (Namespace, error) {
	if err := n.validate(); err != nil {
		return Namespace{}, err
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
	var n Namespace
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := get(tx, bucketNamespaces, k.String(), &n)
		if err == nil && !ok {
			err = notFound(ObjectNamespace, k.String())
		}
		return err
	})
	return n, err
}

// Namespaces lists a tenant's namespaces.
func (s *Store) Namespaces(tenant string) ([]Namespace, error) {
	var out []Namespace
	err := s.view(func(tx *bolt.Tx) (err error) {
		if err := requireTenant(tx, tenant); err != nil {
			return err
		}
		out, err = list[Namespace](tx, bucketNamespaces, tenant+"/")
		return err
	})
	return out, err
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
	if err := w.tx.Bucket(bucket).Delete([]byte(key)); err != nil {
		return err
	}
	return w.record(OpDeleted, kind, ck, nil)
}

// CreateStream adds a stream to an existing namespace, with defaults
// filled in (see Stream). It returns the stored stream.
func (s *Store) CreateStream(st Stream) (Stream, error) {
	st = st.withDefaults()
	if err := st.validate(); err != nil {
		return Stream{}, err
	}
	k := st.Key()
	err := s.update(func(w *wtx) error {
		if err := require(w.tx, bucketNamespaces, ObjectNamespace, nsKey(k.TenantID, k.Namespace)); err != nil {
			return err
		}
		if exists(w.tx, bucketStreams, k.storeKey()) {
			return existsErr(ObjectStream, k.String())
		}
		if err := w.put(bucketStreams, k.storeKey(), st); err != nil {
			return err
		}
		return w.record(OpCreated, ObjectStream, k.changeKey(), st)
	})
	return st, err
}

// Stream returns one stream.
func (s *Store) Stream(k StreamKey) (Stream, error) {
	var st Stream
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := get(tx, bucketStreams, k.storeKey(), &st)
		if err == nil && !ok {
			err = notFound(ObjectStream, k.String())
		}
		return err
	})
	return st, err
}

// Streams lists a namespace's streams.
func (s *Store) Streams(k NamespaceKey) ([]Stream, error) {
	return listChildren[Stream](s, bucketStreams, k)
}

// UpdateStream applies p to a stream and returns the result.
func (s *Store) UpdateStream(k StreamKey, p StreamPatch) (Stream, error) {
	var st Stream
	err := s.update(func(w *wtx) error {
		ok, err := get(w.tx, bucketStreams, k.storeKey(), &st)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(ObjectStream, k.String())
		}
		st = p.apply(st)
		if err := st.validate(); err != nil {
			return err
		}
		if err := w.put(bucketStreams, k.storeKey(), st); err != nil {
			return err
		}
		return w.record(OpUpdated, ObjectStream, k.changeKey(), st)
	})
	return st, err
}

// DeleteStream removes a stream.
func (s *Store) DeleteStream(k StreamKey) error {
	return s.update(func(w *wtx) error {
		if err := require(w.tx, bucketStreams, ObjectStream, k.storeKey()); err != nil {
			return err
		}
		return w.deleteLeaf(bucketStreams, k.storeKey(), ObjectStream, k.changeKey())
	})
}

// CreateCache adds a cache to an existing namespace.
func (s *Store) CreateCache(c Cache) (Cache, error) {
	if err := c.validate(); err != nil {
		return Cache{}, err
	}
	k := c.Key()
	err := s.update(func(w *wtx) error {
		if err := require(w.tx, bucketNamespaces, ObjectNamespace, nsKey(k.TenantID, k.Namespace)); err != nil {
			return err
		}
		if exists(w.tx, bucketCaches, k.storeKey()) {
			return existsErr(ObjectCache, k.String())
		}
		if err := w.put(bucketCaches, k.storeKey(), c); err != nil {
			return err
		}
		return w.record(OpCreated, ObjectCache, k.changeKey(), c)
	})
	return c, err
}

// Cache returns one cache.
func (s *Store) Cache(k CacheKey) (Cache, error) {
	var c Cache
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := get(tx, bucketCaches, k.storeKey(), &c)
		if err == nil && !ok {
			err = notFound(ObjectCache, k.String())
		}
		return err
	})
	return c, err
}

// Caches lists a namespace's caches.
func (s *Store) Caches(k NamespaceKey) ([]Cache, error) {
	return listChildren[Cache](s, bucketCaches, k)
}

// UpdateCache applies p to a cache and returns the result.
func (s *Store) UpdateCache(k CacheKey, p CachePatch) (Cache, error) {
	var c Cache
	err := s.update(func(w *wtx) error {
		ok, err := get(w.tx, bucketCaches, k.storeKey(), &c)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(ObjectCache, k.String())
		}
		c = p.apply(c)
		if err := c.validate(); err != nil {
			return err
		}
		if err := w.put(bucketCaches, k.storeKey(), c); err != nil {
			return err
		}
		return w.record(OpUpdated, ObjectCache, k.changeKey(), c)
	})
	return c, err
}

// DeleteCache removes a cache.
func (s *Store) DeleteCache(k CacheKey) error {
	return s.update(func(w *wtx) error {
		if err := require(w.tx, bucketCaches, ObjectCache, k.storeKey()); err != nil {
			return err
		}
		return w.deleteLeaf(bucketCaches, k.storeKey(), ObjectCache, k.changeKey())
	})
}

// listChildren lists the objects of a namespace, which must exist.
func listChildren[T any](s *Store, bucket []byte, k NamespaceKey) ([]T, error) {
	var out []T
	err := s.view(func(tx *bolt.Tx) (err error) {
		if err := require(tx, bucketNamespaces, ObjectNamespace, k.String()); err != nil {
			return err
		}
		out, err = list[T](tx, bucket, k.String()+"/")
		return err
	})
	return out, err
}
