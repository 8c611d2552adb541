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

// DefaultMaxObjectBytes is StoreOptions.MaxObjectBytes's default: half of
// what an HTTPSource reads, so a broker following the store over HTTP can
// always read its snapshot.
const DefaultMaxObjectBytes = 32 << 20

func defaultMaxObjectBytes() int64 { return maxSourceBody / 2 }

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
	// MaxObjectBytes bounds the JSON bytes of all objects together: what
	// a snapshot, and a list read without paging, carry. A create or update
	// that would pass it fails with a *LimitError (deletes never do).
	// Default DefaultMaxObjectBytes (32 MiB, some 150000 objects of
	// ordinary size).
	MaxObjectBytes int64
}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.ChangeRetention <= 0 {
		o.ChangeRetention = DefaultChangeRetention
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = time.Second
	}
	if o.MaxObjectBytes <= 0 {
		o.MaxObjectBytes = defaultMaxObjectBytes()
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
	// metaObjectBytes is the JSON bytes of all objects (MaxObjectBytes),
	// counted at open when a store written before it lacks it.
	metaObjectBytes = []byte("object_bytes")

	objectBuckets = [][]byte{bucketTenants, bucketNamespaces, bucketStreams, bucketCaches}
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

	closeOnce sync.Once
	closing   chan struct{} // closed when Close begins: ends backups in flight
}

// Open opens (or creates) the store file at path, usually
// filepath.Join(dataDir, FileName).
func Open(path string, opts StoreOptions) (*Store, error) {
	opts = opts.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("open control plane store %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, changed: make(chan struct{}), closing: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketTenants, bucketNamespaces, bucketStreams, bucketCaches, bucketChanges} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(metaObjectBytes) == nil {
			if err := countObjectBytes(tx); err != nil {
				return err
			}
		}
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

// Close closes the file. Later calls fail with ErrClosed. Backups being
// served (GET /v1/admin/backup/store) are cut short first: bbolt's close
// waits for every read transaction, and a backup's lasts as long as its
// client takes to read it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	return s.db.Close()
}

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

// countObjectBytes records the JSON bytes of all objects.
func countObjectBytes(tx *bolt.Tx) error {
	var n uint64
	for _, b := range objectBuckets {
		if err := tx.Bucket(b).ForEach(func(_, v []byte) error { n += uint64(len(v)); return nil }); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaObjectBytes, seqKey(n))
}

// wtx is a write transaction that records changes.
type wtx struct {
	tx      *bolt.Tx
	changes int
	delta   int64 // change of the objects' JSON bytes
}

// update runs fn in one write transaction, then trims the change log.
func (s *Store) update(fn func(w *wtx) error) error {
	var recorded bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		w := &wtx{tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		if err := s.account(tx, w.delta); err != nil {
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

// account adds delta to the objects' bytes, refusing growth past
// MaxObjectBytes.
func (s *Store) account(tx *bolt.Tx, delta int64) error {
	if delta == 0 {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	var cur int64
	if v := meta.Get(metaObjectBytes); len(v) == 8 {
		cur = int64(binary.BigEndian.Uint64(v))
	}
	next := max(cur+delta, 0)
	if delta > 0 && next > s.opts.MaxObjectBytes {
		return &LimitError{Have: cur, Want: next, Limit: s.opts.MaxObjectBytes}
	}
	return meta.Put(metaObjectBytes, seqKey(uint64(next)))
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
	bk := w.tx.Bucket(bucket)
	w.delta += int64(len(b)) - int64(len(bk.Get([]byte(key))))
	return bk.Put([]byte(key), b)
}

// del removes the object under key in bucket.
func (w *wtx) del(bucket []byte, key string) error {
	bk := w.tx.Bucket(bucket)
	w.delta -= int64(len(bk.Get([]byte(key))))
	return bk.Delete([]byte(key))
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
	p, err := listPage[T](tx, bucket, prefix, ListOptions{})
	return p.Items, err
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
