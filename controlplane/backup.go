package controlplane

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Backups of the store. A copy is the whole bbolt file as one read
// transaction sees it (bbolt's Tx.WriteTo): consistent, a file that Open
// accepts, and written while writes go on (they are not in the copy).
// Three ways to take one: Store.WriteBackup in the process that has the
// store open, GET /v1/admin/backup/store on its API (admin only), and
// BackupFile on the file of a stopped broker. CheckStoreFile checks a copy.

// ErrStoreInUse: the store file is open in another process (a running
// broker or control plane holds bbolt's lock on it), so it cannot be read
// from the file; ask that process for a copy instead.
var ErrStoreInUse = errors.New("control plane store in use by another process")

// DefaultBackupOpenTimeout is BackupFile's wait for the file's lock when
// it is given no timeout.
const DefaultBackupOpenTimeout = time.Second

// WriteBackup writes a consistent copy of the whole store to w from one
// read transaction and returns its size in bytes.
func (s *Store) WriteBackup(w io.Writer) (int64, error) {
	return s.writeBackup(w, nil)
}

// writeBackup is WriteBackup calling before with the copy's size before
// the first byte is written.
func (s *Store) writeBackup(w io.Writer, before func(size int64)) (n int64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if before != nil {
			before(tx.Size())
		}
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("control plane store backup: %w", err)
	}
	return n, nil
}

// backupSize is the size of the copy WriteBackup would write now (the
// read transaction's Size: the file's meta says it, nothing is read).
func (s *Store) backupSize() (size int64, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("control plane store backup size: %w", err)
	}
	return size, nil
}

// BackupFile writes a consistent copy of the store file at path to w and
// returns its size. It opens the file read-only (it never changes it), so
// it is for the store of a stopped broker: when another process has the
// store open it fails with ErrStoreInUse once timeout has passed
// (DefaultBackupOpenTimeout when 0 or less).
func BackupFile(path string, w io.Writer, timeout time.Duration) (int64, error) {
	if timeout <= 0 {
		timeout = DefaultBackupOpenTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return 0, fmt.Errorf("read control plane store %s: %w (its lock was not free within %v)", path, ErrStoreInUse, timeout)
	}
	if err != nil {
		return 0, fmt.Errorf("read control plane store %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("read control plane store %s: %w", path, err)
	}
	return n, nil
}

// StoreFileInfo is what CheckStoreFile found in a store file.
type StoreFileInfo struct {
	ID                                   string // the store's ID (Store.ID)
	Tenants, Namespaces, Streams, Caches int
	Bytes                                int64 // file size
}

// CheckStoreFile opens the store file at path read-only (failing with
// ErrStoreInUse if another process has it open) and checks it: bbolt's
// consistency check of every page, then that it holds a store's buckets
// and ID. It counts the objects.
func CheckStoreFile(path string) (StoreFileInfo, error) {
	var info StoreFileInfo
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultBackupOpenTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return info, fmt.Errorf("check control plane store %s: %w", path, ErrStoreInUse)
	}
	if err != nil {
		return info, fmt.Errorf("check control plane store %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		info.Bytes = tx.Size()
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("inconsistent: %w", err)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(metaStoreID) == nil {
			return errors.New("not a control plane store: no store ID")
		}
		info.ID = string(meta.Get(metaStoreID))
		for _, c := range []struct {
			bucket []byte
			n      *int
		}{{bucketTenants, &info.Tenants}, {bucketNamespaces, &info.Namespaces}, {bucketStreams, &info.Streams}, {bucketCaches, &info.Caches}} {
			b := tx.Bucket(c.bucket)
			if b == nil {
				return fmt.Errorf("not a control plane store: no %s bucket", c.bucket)
			}
			*c.n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("check control plane store %s: %w", path, err)
	}
	return info, nil
}

// backupStore answers GET /v1/admin/backup/store: the store as one
// consistent bbolt file (application/octet-stream, with Content-Length,
// so a copy cut short is told from a whole one). A failure once the body
// has started aborts the connection: the client sees a short body, never
// an error message appended to the file. The read transaction lasts as
// long as the client reads, so the answer is cut short (the connection
// dropped) when a write waits Options.BackupWriteTimeout on the client or
// when the store closes. A HEAD gets the same status and headers, with the
// size the copy would have now, and copies nothing.
func (s *Server) backupStore(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodHead {
		size, err := s.opts.Store.backupSize()
		if err != nil {
			return err
		}
		backupHeaders(w.Header(), size)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	bw := &backupWriter{w: w, rc: http.NewResponseController(w), idle: s.opts.BackupWriteTimeout}
	stop := bw.abortWhen(s.opts.Store.closing)
	defer stop()
	started := false
	_, err := s.opts.Store.writeBackup(bw, func(size int64) {
		backupHeaders(w.Header(), size)
		w.WriteHeader(http.StatusOK)
		started = true
	})
	if err == nil && started {
		err = bw.finish()
	}
	if err != nil && started {
		s.opts.Logger.Error("control plane store backup cut short", "remote", r.RemoteAddr, "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}

// backupHeaders describes a backup of size bytes.
func backupHeaders(h http.Header, size int64) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", `attachment; filename="`+FileName+`"`)
	h.Set("Cache-Control", "no-store")
}

// backupWriter writes a backup's body with a write deadline idle ahead of
// each write, and fails every write from abort on.
type backupWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	idle time.Duration

	mu      sync.Mutex
	aborted bool
}

// errBackupAborted fails the writes of a backup whose store is closing.
var errBackupAborted = fmt.Errorf("%w: the backup was cut short", ErrClosed)

func (b *backupWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.aborted {
		b.mu.Unlock()
		return 0, errBackupAborted
	}
	_ = b.rc.SetWriteDeadline(time.Now().Add(b.idle)) // ErrNotSupported: no bound
	b.mu.Unlock()
	n, err := b.w.Write(p)
	return n, b.explain(err)
}

// explain says why a write failed when the deadline cut it short.
func (b *backupWriter) explain(err error) error {
	if err == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.aborted {
		return errBackupAborted
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the client read nothing for %v: %w", b.idle, err)
	}
	return err
}

// finish sends what the response buffers, then lifts the deadline, which
// would otherwise outlive the request on a kept-alive connection.
func (b *backupWriter) finish() error {
	b.mu.Lock()
	aborted := b.aborted
	if !aborted {
		_ = b.rc.SetWriteDeadline(time.Now().Add(b.idle))
	}
	b.mu.Unlock()
	if aborted {
		return errBackupAborted
	}
	if err := b.rc.Flush(); err != nil {
		return b.explain(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.aborted {
		return errBackupAborted
	}
	_ = b.rc.SetWriteDeadline(time.Time{})
	return nil
}

// abort fails the write in progress (its deadline is now) and every later
// one.
func (b *backupWriter) abort() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.aborted = true
	_ = b.rc.SetWriteDeadline(time.Now())
}

// abortWhen aborts b when closing is closed, until stop is called; stop
// returns once the watch has ended.
func (b *backupWriter) abortWhen(closing <-chan struct{}) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-closing:
			b.abort()
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
