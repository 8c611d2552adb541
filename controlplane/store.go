package controlplane

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the store's file name in the data directory.
const FileName = "controlplane.db"

// DefaultChangeRetention is StoreOptions.ChangeRetention's default.
const DefaultChangeRetention = 10000

// StoreOptions configure a Store. The zero value is valid; each field
// documents its default.
type StoreOptions struct {
	// ChangeRetention is how many of the newest changes the change log
	// keeps. A reader asking for an older position is told to resync.
	// Default 10000.
	ChangeRetention int
	// OpenTimeout bounds the wait for the file lock when another process
	// has the store open. Default 1s.
	OpenTimeout time.Duration
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.ChangeRetention <= 0 {
		o.ChangeRetention = DefaultChangeRetention
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = time.Second
	}
	return o
}

// Bucket names. Object keys are "tenant", "tenant/ns" and "tenant/ns/name"
// (names never contain '/', so "tenant/" is exactly a tenant's children);
// change keys are the big-endian seq.
var (
	bucketMeta       = []byte("meta")
	bucketTenants    = []byte("tenants")
	bucketNamespaces = []byte("namespaces")
	bucketStreams    = []byte("streams")
	bucketCaches     = []byte("caches")
	bucketChanges    = []byte("changes")

	metaStoreID  = []byte("store_id")
	metaFirstSeq = []byte("first_seq") // oldest retained change seq
)

// Store is the control plane's metadata: tenants, namespaces, streams and
// caches, and the change log, in one bbolt file. It is safe for concurrent
// use. Every mutation runs in one bbolt transaction that also appends its
// change records, so the objects and the feed never disagree.
type Store struct {
	db   *bolt.DB
	opts StoreOptions
	id   string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after each committed change
}

// Open opens (or creates) the store file at path, usually
// filepath.Join(dataDir, FileName).
func Open(path string, opts StoreOptions) (*Store, error) {
	opts = opts.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("open control plane store %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, changed: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketTenants, bucketNamespaces, bucketStreams, bucketCaches, bucketChanges} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if id := meta.Get(metaStoreID); id != nil {
			s.id = string(id)
			return nil
		}
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		s.id = hex.EncodeToString(b[:])
		if err := meta.Put(metaFirstSeq, seqKey(1)); err != nil {
			return err
		}
		return meta.Put(metaStoreID, []byte(s.id))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init control plane store %s: %w", path, err)
	}
	return s, nil
}

// ID identifies this store's history: it is random at creation and kept
// across reopens. A reader that sees another ID must take a new snapshot.
func (s *Store) ID() string { return s.id }

// Close closes the file. Later calls fail with ErrClosed.
func (s *Store) Close() error { return s.db.Close() }

// Changed returns a channel closed at the next committed change, for
// in-process readers that want to follow without polling.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// wtx is a write transaction that records changes.
type wtx struct {
	tx      *bolt.Tx
	changes int
}

// update runs fn in one write transaction, then trims the change log.
func (s *Store) update(fn func(w *wtx) error) error {
	var recorded bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		w := &wtx{tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		recorded = w.changes > 0
		return s.trim(tx)
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	if err == nil && recorded {
		s.notify()
	}
	return err
}

// Ping checks that the store can run a read transaction.
func (s *Store) Ping() error { return s.view(func(*bolt.Tx) error { return nil }) }

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// trim drops the oldest changes beyond ChangeRetention.
func (s *Store) trim(tx *bolt.Tx) error {
	ch := tx.Bucket(bucketChanges)
	meta := tx.Bucket(bucketMeta)
	head := ch.Sequence()
	first := firstSeq(meta)
	keep := uint64(s.opts.ChangeRetention)
	if head < keep || head-keep < first {
		return nil
	}
	cut := head - keep // delete first..cut
	for seq := first; seq <= cut; seq++ {
		if err := ch.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	return meta.Put(metaFirstSeq, seqKey(cut+1))
}

func firstSeq(meta *bolt.Bucket) uint64 {
	if v := meta.Get(metaFirstSeq); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 1
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// record appends a change; obj is nil for deletes.
func (w *wtx) record(op, kind string, key Key, obj any) error {
	ch := w.tx.Bucket(bucketChanges)
	seq, err := ch.NextSequence()
	if err != nil {
		return err
	}
	c := Change{Seq: seq, Op: op, Kind: kind, Key: key, Object: json.RawMessage("null")}
	if obj != nil {
		if c.Object, err = json.Marshal(obj); err != nil {
			return err
		}
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	w.changes++
	return ch.Put(seqKey(seq), v)
}

// put stores v under key in bucket.
func (w *wtx) put(bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.tx.Bucket(bucket).Put([]byte(key), b)
}

// get decodes the object under key; it reports whether it exists.
func get(tx *bolt.Tx, bucket []byte, key string, v any) (bool, error) {
	b := tx.Bucket(bucket).Get([]byte(key))
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("decode %s %q: %w", bucket, key, err)
	}
	return true, nil
}

func exists(tx *bolt.Tx, bucket []byte, key string) bool {
	return tx.Bucket(bucket).Get([]byte(key)) != nil
}

// list decodes every object whose key starts with prefix, in key order.
func list[T any](tx *bolt.Tx, bucket []byte, prefix string) ([]T, error) {
	out := []T{}
	c := tx.Bucket(bucket).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("decode %s %q: %w", bucket, k, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// keysWithPrefix returns the keys under prefix (copied: they outlive
// deletes in the same transaction).
func keysWithPrefix(tx *bolt.Tx, bucket []byte, prefix string) []string {
	var out []string
	c := tx.Bucket(bucket).Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		out = append(out, string(k))
	}
	return out
}
