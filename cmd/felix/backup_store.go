package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/felixmq/felix/controlplane"
)

// backupStoreWait is how long `felix backup` waits for the store file's
// lock before taking the broker for running and asking its API.
var backupStoreWait = 500 * time.Millisecond

// backupFetchTimeout bounds the request for a running broker's store.
const backupFetchTimeout = time.Minute

// backupStore copies the control-plane store of src into dst, if there is
// one: from the file when no process has it open, else from the API of
// the running broker that has. The copy is checked (bbolt's consistency
// check, the store's ID) before it counts.
func backupStore(ctx context.Context, f backupFlags, src, dst string, sum *backupSummary) error {
	path := filepath.Join(src, controlplane.FileName)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	out := filepath.Join(dst, controlplane.FileName)
	from, err := writeStoreCopy(out, func(w io.Writer) (string, error) {
		if backupHook != nil {
			if err := backupHook(path); err != nil {
				return "", err
			}
		}
		_, err := controlplane.BackupFile(path, w, backupStoreWait)
		return "file", err
	})
	if errors.Is(err, controlplane.ErrStoreInUse) {
		from, err = writeStoreCopy(out, func(w io.Writer) (string, error) { return fetchStore(ctx, f, src, w) })
		if err != nil {
			return fmt.Errorf("control-plane store %s is in use (a running broker or control plane has it open), and asking its API for a copy failed: %w", path, err)
		}
	}
	if err != nil {
		return err
	}
	info, err := controlplane.CheckStoreFile(out)
	if err != nil {
		return fmt.Errorf("the copy of the control-plane store (from %s): %w", from, err)
	}
	sum.store, sum.storeFrom = &info, from
	return nil
}

// writeStoreCopy creates path (mode 0600, as the broker makes the store),
// fills it with write, and fsyncs it. A failed copy is removed.
func writeStoreCopy(path string, write func(io.Writer) (string, error)) (string, error) {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	from, err := write(out)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return from, nil
}

// fetchStore asks the control plane API of the running broker for a copy
// of its store and writes it to w. It returns the API's base URL.
func fetchStore(ctx context.Context, f backupFlags, src string, w io.Writer) (string, error) {
	base, err := f.baseURL()
	if err != nil {
		return "", fmt.Errorf("%w, or stop the broker", err)
	}
	f.dataDir = src
	token, err := f.adminToken()
	if err != nil {
		return base, err
	}
	hc, err := f.httpClient(base)
	if err != nil {
		return base, err
	}
	hc.Timeout = 0 // the store may be large: backupFetchTimeout bounds the whole fetch
	ctx, cancel := context.WithTimeout(ctx, backupFetchTimeout)
	defer cancel()
	n, err := controlplane.NewClient(base, token, hc).BackupStore(ctx, w)
	var apiErr *controlplane.APIError
	switch {
	case errors.As(err, &apiErr):
		hint := httpsHint(base, apiErr.Status, apiErr.Message)
		if apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden {
			hint = " (is it the broker of this data dir? give its admin token with --controlplane-token)"
		}
		return base, fmt.Errorf("GET %s%s: %d %s: %s%s", base, controlplane.BackupStorePath, apiErr.Status, http.StatusText(apiErr.Status), apiErr.Message, hint)
	case err != nil && n == 0 && !errors.Is(err, io.ErrUnexpectedEOF):
		return base, fmt.Errorf("no answer from the control plane (--controlplane-addr, --controlplane-url): %w", err)
	case err != nil:
		return base, fmt.Errorf("GET %s%s: the copy was cut short after %d bytes: %w", base, controlplane.BackupStorePath, n, err)
	}
	return base, nil
}
