package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/controlplane"
)

// `felix backup DEST` copies a data directory into a new directory that
// `felix serve --data-dir DEST` starts from, with the broker stopped or
// running:
//
//   - The control-plane store first (so a broker that cannot be asked for
//     it fails the backup before anything big is copied): read from its
//     file in one bbolt read transaction, or, when a running broker holds
//     the file, fetched from that broker's API (GET
//     /v1/admin/backup/store, the same copy taken in the broker).
//   - Then every commit log: queue group state (groups/) before the
//     streams (streams/), so a group's cursor in the copy never lies
//     beyond its stream's copy, then durable caches (caches/). Each log's
//     segments are copied oldest to newest (see copyLog), so each log in
//     the copy is a prefix of the live one.
//   - Then the small files of the top level (keys, certificate, admin
//     token), with their permissions; not felix.lock or files.lock.
//
// Everything is written into DEST.tmp-* next to DEST, fsynced, and
// renamed to DEST at the end: a backup that fails leaves no DEST.

// backupFlags are the flags of `felix backup`.
type backupFlags struct {
	// The data dir to back up, and how to reach a running broker's
	// control plane for its store.
	cpAPIFlags
}

// Files of the data dir's top level that are not copied: the lock files
// (they hold no data and are made at start) and the store (copied on its
// own).
var backupSkipFiles = []string{"felix.lock", "files.lock", controlplane.FileName}

// Kinds of commit logs, each a directory of the data dir, in the order
// they are copied: group state before its streams.
var backupLogKinds = []string{"groups", "streams", "caches"}

func newBackupCmd() *cobra.Command {
	var f backupFlags
	cmd := &cobra.Command{
		Use:   "backup DEST",
		Short: "Copy a data directory (broker running or stopped) into a new directory felix serve starts from",
		Long: `Copy a data directory into DEST, a new (or empty) directory from which
"felix serve --data-dir DEST" starts with a consistent state. The broker may
be stopped or running.

Durable streams, durable caches and queue group state are copied log by
log, each log's segments oldest to newest; each log in the copy is a
complete log, the live one as it was at some moment during the backup (a
record being written as its log was read is cut off), and every record
acknowledged before the backup started is in it. The logs are not copied
at one instant together: see docs/operations.md, "Backups".

The control-plane store (controlplane.db) is copied from its file when the
broker is stopped; a running broker holds that file, so it is fetched from
the broker's control-plane API (GET /v1/admin/backup/store) at
--controlplane-addr or --controlplane-url, with --controlplane-token
(default: the admin token in the data dir). The keys, certificate and admin
token keep their permissions.

Everything is written to DEST.tmp-* beside DEST and renamed to DEST at the
end: a failed backup leaves no DEST. Prints what it copied; exits non-zero
on any failure.`,
		Args:    cobra.ExactArgs(1),
		PreRunE: envPreRun,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSignals(func(ctx context.Context, cmd *cobra.Command) error {
				sum, err := runBackup(ctx, f, args[0])
				if err != nil {
					return err
				}
				return sum.print(cmd.OutOrStdout())
			})(cmd, args)
		},
	}
	fl := cmd.Flags()
	f.register(fl, "data directory to back up (as felix serve's --data-dir); the running broker's control-plane API is asked for the store, which the broker holds")
	annotateEnv(fl)
	return cmd
}

// backupSummary is what a backup copied.
type backupSummary struct {
	src, dest string
	took      time.Duration
	logs      map[string]*logTotals // by kind
	store     *controlplane.StoreFileInfo
	storeFrom string   // "file" or the API's URL
	files     []string // top-level files, by name (and those of other directories, by path)
	tornLogs  int      // logs whose copy ended in a record being written
	tornBytes int64
	gone      []string // logs deleted while the backup ran
}

// logTotals adds up the logs of one kind.
type logTotals struct {
	logs, segments int
	records, bytes int64
}

// backupHook, when set, is called before each file of the data dir is
// opened for copying; an error it returns fails the backup as a read
// error would (tests).
var backupHook func(path string) error

// runBackup copies the data dir of f into dest (see the top of this file).
func runBackup(ctx context.Context, f backupFlags, dest string) (*backupSummary, error) {
	start := time.Now()
	src, dest, err := backupPaths(f.dataDir, dest)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), filepath.Base(dest)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	sum := &backupSummary{src: f.dataDir, dest: dest, logs: map[string]*logTotals{}}
	if err := backupInto(ctx, f, src, tmp, sum); err != nil {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			return nil, fmt.Errorf("backup failed: %w (and removing %s: %v)", err, tmp, rerr)
		}
		return nil, fmt.Errorf("backup failed, nothing written to %s: %w", dest, err)
	}
	if err := finishBackup(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("backup failed, nothing written to %s: %w", dest, err)
	}
	sum.took = time.Since(start)
	return sum, nil
}

// backupPaths checks the data dir and DEST: the data dir must be a
// directory, DEST must not exist or be an empty directory, and must not be
// inside the data dir. It returns both as absolute paths.
func backupPaths(dataDir, dest string) (string, string, error) {
	if dataDir == "" {
		return "", "", errors.New("--data-dir: empty")
	}
	src, err := filepath.Abs(dataDir)
	if err == nil {
		src, err = filepath.EvalSymlinks(src)
	}
	if err != nil {
		return "", "", fmt.Errorf("--data-dir: %w", err)
	}
	if st, err := os.Stat(src); err != nil {
		return "", "", fmt.Errorf("--data-dir: %w", err)
	} else if !st.IsDir() {
		return "", "", fmt.Errorf("--data-dir: %s is not a directory", dataDir)
	}
	if dest, err = filepath.Abs(dest); err != nil {
		return "", "", fmt.Errorf("DEST: %w", err)
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(dest))
	if err != nil {
		return "", "", fmt.Errorf("DEST: its parent directory: %w", err)
	}
	dest = filepath.Join(parent, filepath.Base(dest))
	if rel, err := filepath.Rel(src, dest); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", "", fmt.Errorf("DEST %s is inside the data directory %s: give a directory outside it", dest, src)
	}
	switch st, err := os.Lstat(dest); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", "", fmt.Errorf("DEST: %w", err)
	case !st.IsDir():
		return "", "", fmt.Errorf("DEST %s exists and is not a directory: give a new directory", dest)
	default:
		ents, err := os.ReadDir(dest)
		if err != nil {
			return "", "", fmt.Errorf("DEST: %w", err)
		}
		if len(ents) > 0 {
			return "", "", fmt.Errorf("DEST %s exists and is not empty: give a new (or empty) directory", dest)
		}
	}
	return src, dest, nil
}

// backupInto copies src into the new directory tmp.
func backupInto(ctx context.Context, f backupFlags, src, tmp string, sum *backupSummary) error {
	if st, err := os.Stat(src); err == nil {
		if err := os.Chmod(tmp, st.Mode().Perm()); err != nil {
			return err
		}
	}
	if err := backupStore(ctx, f, src, tmp, sum); err != nil {
		return err
	}
	for _, kind := range backupLogKinds {
		if err := backupLogs(ctx, filepath.Join(src, kind), filepath.Join(tmp, kind), kind, sum); err != nil {
			return err
		}
	}
	if err := backupFiles(ctx, src, tmp, sum); err != nil {
		return err
	}
	return syncDirs(tmp)
}

// finishBackup renames tmp to dest (an empty dest directory is replaced)
// and syncs their parent.
func finishBackup(tmp, dest string) error {
	if err := os.Remove(dest); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace the empty %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dest))
}

func (s *backupSummary) print(w io.Writer) error {
	fmt.Fprintf(w, "backup of %s written to %s in %v\n", s.src, s.dest, s.took.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tLOGS\tSEGMENTS\tRECORDS\tBYTES")
	for _, kind := range []string{"streams", "caches", "groups"} {
		t := s.logs[kind]
		if t == nil {
			t = &logTotals{}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", kind, t.logs, t.segments, t.records, t.bytes)
	}
	tw.Flush()
	switch {
	case s.store == nil:
		fmt.Fprintln(w, "control-plane store: none in the data directory")
	default:
		from := "read from its file (broker stopped)"
		if s.storeFrom != "file" {
			from = "fetched from the control-plane API at " + s.storeFrom + " (held by a running broker)"
		}
		fmt.Fprintf(w, "control-plane store: %d bytes, %d tenants, %d namespaces, %d streams, %d caches, %s\n",
			s.store.Bytes, s.store.Tenants, s.store.Namespaces, s.store.Streams, s.store.Caches, from)
	}
	fmt.Fprintf(w, "files: %d (%s)\n", len(s.files), strings.Join(s.files, ", "))
	if s.tornLogs > 0 {
		fmt.Fprintf(w, "logs written to while copied: %d (the record being written, %d bytes in all, cut off)\n", s.tornLogs, s.tornBytes)
	}
	if len(s.gone) > 0 {
		slices.Sort(s.gone)
		fmt.Fprintf(w, "logs deleted while copied (not in the backup): %s\n", strings.Join(s.gone, ", "))
	}
	_, err := fmt.Fprintln(w, "ok")
	return err
}
