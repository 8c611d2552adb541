package controlplane

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
// an error message appended to the file.
func (s *Server) backupStore(w http.ResponseWriter, r *http.Request) error {
	started := false
	_, err := s.opts.Store.writeBackup(w, func(size int64) {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="`+FileName+`"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		started = true
	})
	if err != nil && started {
		s.opts.Logger.Error("control plane store backup cut short", "remote", r.RemoteAddr, "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}
