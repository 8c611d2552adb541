package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// openForBackup opens a file of the data dir for copying (through
// backupHook).
func openForBackup(path string) (*os.File, error) {
	if backupHook != nil {
		if err := backupHook(path); err != nil {
			return nil, err
		}
	}
	return os.Open(path)
}

// copyOpened copies src to the new file dst with mode perm (exactly: not
// masked by the umask), fsyncs it and returns the bytes copied.
func copyOpened(src *os.File, dst string, perm fs.FileMode) (int64, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, src)
	if err != nil {
		err = fmt.Errorf("copy %s: %w", src.Name(), err)
	}
	if err == nil {
		err = out.Chmod(perm)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// copyFile copies the file src to dst with src's permissions.
func copyFile(src, dst string) (int64, error) {
	in, err := openForBackup(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, err
	}
	return copyOpened(in, dst, st.Mode().Perm())
}

// isDir reports whether path is a directory or a link to one.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// mkdirLike makes dst with the permissions of the directory src.
func mkdirLike(src, dst string) error {
	perm := fs.FileMode(0o700)
	if st, err := os.Stat(src); err == nil {
		perm = st.Mode().Perm()
	}
	if err := os.Mkdir(dst, perm); err != nil {
		return err
	}
	return os.Chmod(dst, perm) // not masked by the umask
}

// backupFiles copies the top level of the data dir but for the logs, the
// store and the lock files: the development certificate and key, the QUIC
// reset key, the token signing key, the admin token, and whatever else is
// there (other directories whole). Symbolic links are copied as links.
func backupFiles(ctx context.Context, src, dst string, sum *backupSummary) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if slices.Contains(backupSkipFiles, name) || (slices.Contains(backupLogKinds, name) && isDir(filepath.Join(src, name))) {
			continue // the logs were copied (backupLogs), through a link too
		}
		if err := copyTree(ctx, filepath.Join(src, name), filepath.Join(dst, name), name, sum); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies a file, link or directory (recursively), adding the
// files to the summary as rel.
func copyTree(ctx context.Context, src, dst, rel string, sum *backupSummary) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case st.Mode().IsRegular():
		if _, err := copyFile(src, dst); err != nil {
			return err
		}
		sum.files = append(sum.files, rel)
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		sum.files = append(sum.files, rel)
	case st.IsDir():
		if err := mkdirLike(src, dst); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyTree(ctx, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), filepath.Join(rel, e.Name()), sum); err != nil {
				return err
			}
		}
	}
	// Sockets, pipes and devices are not data: left out.
	return nil
}

// syncDir fsyncs a directory, so the names in it are on disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// syncDirs fsyncs every directory under root, root included (the files
// were fsynced as they were written).
func syncDirs(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(path)
		}
		return nil
	})
}
