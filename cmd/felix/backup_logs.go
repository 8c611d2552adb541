package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/felixmq/felix/commitlog"
)

// Copying a commit log that may be written meanwhile. What the format
// allows (commitlog's package doc, docs/storage.md):
//
//   - Records are only appended, to the last (active) segment. A new
//     segment is created only after the previous one is complete on disk
//     with its index: a segment with a newer one beside it never changes.
//   - Retention and compaction delete whole segments from the head, never
//     the active one.
//   - Open accepts a run of segments whose bases follow each other with no
//     gap, and cuts a torn record off the end of the last one.
//
// So copyLog lists the segments once and copies them oldest to newest:
// every one but the last is complete. A segment gone by the time it is
// opened was deleted from the head, with every older one: the older copies
// are dropped (they would leave a gap) and the copy goes on from the next.
// The last segment is read while it may grow: its copy ends at a record
// boundary or inside the record being written. Opening the copy cuts such
// a torn record off; Verify then checks every record. Segments made after
// the listing are not copied: the copy is the log as it was at some
// moment during the copy, a prefix of the live log holding every record
// appended before the backup started (and not yet deleted by retention).
//
// Index files of the complete segments are copied (Open checks them, and
// rebuilds one that is missing or wrong); LOCK is not: it holds nothing,
// Open makes it.

// logCopy is what copyLog copied.
type logCopy struct {
	segments       int
	records, bytes int64
	torn           int64 // bytes of a record being written, cut off the copy
	gone           bool  // the log was deleted before it could be copied
}

// backupLogs copies every log under root (streams/, caches/ or groups/)
// into dst, adding them to the summary as kind.
func backupLogs(ctx context.Context, root, dst, kind string, sum *backupSummary) error {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return danglingLink(root)
	}
	if sum.logs[kind] == nil {
		sum.logs[kind] = &logTotals{}
	}
	return backupLogTree(ctx, root, dst, kind, "", sum, nil)
}

// backupLogTree copies the log in src, or the logs below it. Symbolic
// links to directories are followed (the broker follows them: a log moved
// to another disk) and copied as directories; above is the directories
// src lies in, to refuse a link loop.
func backupLogTree(ctx context.Context, src, dst, kind, rel string, sum *backupSummary, above []fs.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) && rel != "" {
		return danglingLink(src) // else deleted meanwhile (a stream, its groups or a cache)
	}
	if err != nil {
		return err
	}
	for _, a := range above {
		if os.SameFile(a, st) {
			return fmt.Errorf("%s: a symbolic link loop (a directory it lies in)", src)
		}
	}
	ents, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) && rel != "" {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	if len(commitlog.SegmentBases(ents)) > 0 {
		c, err := copyLog(ctx, src, dst)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join(kind, rel))
		if c.gone {
			sum.gone = append(sum.gone, name)
			return nil
		}
		t := sum.logs[kind]
		t.logs++
		t.segments += c.segments
		t.records += c.records
		t.bytes += c.bytes
		if c.torn > 0 {
			sum.tornLogs++
			sum.tornBytes += c.torn
		}
		return nil
	}
	var subdirs []string
	for _, e := range ents {
		if e.IsDir() || (e.Type()&fs.ModeSymlink != 0 && !isLinkToFile(filepath.Join(src, e.Name()))) {
			subdirs = append(subdirs, e.Name())
		}
	}
	if len(subdirs) == 0 && rel != "" {
		return nil // no log here yet, or none any more
	}
	if err := mkdirLike(src, dst); err != nil {
		return err
	}
	above = append(above[:len(above):len(above)], st)
	for _, d := range subdirs {
		if err := backupLogTree(ctx, filepath.Join(src, d), filepath.Join(dst, d), kind, filepath.Join(rel, d), sum, above); err != nil {
			return err
		}
	}
	return nil
}

// danglingLink is the error for a path that is a symbolic link to nothing
// (a log directory on a disk that is not mounted must not be left out of
// the backup unsaid); nil when path does not exist at all.
func danglingLink(path string) error {
	if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link to a directory that does not exist (is its disk mounted?)", path)
	}
	return nil
}

// isLinkToFile reports whether the symbolic link path leads to something
// that is not a directory (a link that leads nowhere is not).
func isLinkToFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// copyLog copies the log in src to the new directory dst and checks the
// copy. When every segment listed was deleted before it could be read
// (retention or a compaction outran the copy: the log itself is still
// there) the copy starts over from a new listing, a few times. A copy that
// does not check out is taken again once: a copy that raced with the
// cut-off of a failed write could in principle hold its remains under
// later records. A second failure is reported: the live log is then
// likely damaged itself (felix log verify says).
func copyLog(ctx context.Context, src, dst string) (logCopy, error) {
	const maxRelists = 5
	var c logCopy
	var err error
	relists, corrupt := 0, 0
	for {
		c, err = copyLogOnce(ctx, src, dst)
		switch {
		case errors.Is(err, errSegmentsDeleted) && relists < maxRelists:
			relists++
		case errors.Is(err, commitlog.ErrCorrupt) && corrupt < 1:
			corrupt++
		case errors.Is(err, commitlog.ErrCorrupt):
			return c, fmt.Errorf("the copy of the log %s does not check out (see felix log verify %s): %w", src, src, err)
		default:
			return c, err
		}
		if rerr := os.RemoveAll(dst); rerr != nil {
			return c, errors.Join(err, rerr)
		}
	}
}

// errSegmentsDeleted: every segment of a listing was deleted before it
// was read, while the log itself still exists.
var errSegmentsDeleted = errors.New("its segments were deleted (retention or compaction) faster than they could be copied")

func copyLogOnce(ctx context.Context, src, dst string) (logCopy, error) {
	var c logCopy
	ents, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) {
		c.gone = true
		return c, nil
	}
	if err != nil {
		return c, err
	}
	bases := commitlog.SegmentBases(ents)
	if err := mkdirLike(src, dst); err != nil {
		return c, err
	}
	var copied []uint64
	for i, base := range bases {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		in, err := openForBackup(filepath.Join(src, commitlog.SegmentFileName(base)))
		if errors.Is(err, fs.ErrNotExist) {
			// Deleted from the head, with every older segment.
			for _, b := range copied {
				for _, name := range []string{commitlog.SegmentFileName(b), commitlog.IndexFileName(b)} {
					if err := os.Remove(filepath.Join(dst, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return c, err
					}
				}
			}
			copied = copied[:0]
			continue
		}
		if err != nil {
			return c, err
		}
		perm := fs.FileMode(0o644)
		if st, err := in.Stat(); err == nil {
			perm = st.Mode().Perm()
		}
		_, err = copyOpened(in, filepath.Join(dst, commitlog.SegmentFileName(base)), perm)
		in.Close()
		if err != nil {
			return c, err
		}
		copied = append(copied, base)
		if i < len(bases)-1 { // complete, and so is its index
			idx := commitlog.IndexFileName(base)
			if _, err := copyFile(filepath.Join(src, idx), filepath.Join(dst, idx)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return c, err
			}
		}
	}
	if len(bases) == 0 { // not a log yet (being created) or any more
		c.gone = true
		return c, os.RemoveAll(dst)
	}
	if len(copied) == 0 { // the whole log was deleted, or only its listed segments
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			c.gone = true
			return c, os.RemoveAll(dst)
		}
		return c, fmt.Errorf("copy the log %s: %w", src, errSegmentsDeleted)
	}
	last := filepath.Join(dst, commitlog.SegmentFileName(copied[len(copied)-1]))
	before, err := fileSize(last)
	if err != nil {
		return c, err
	}
	// Open cuts a torn record off the last segment (and refuses anything
	// else wrong); Verify then reads every record of the copy.
	lg, err := commitlog.Open(dst, commitlog.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return c, fmt.Errorf("open the copy of %s: %w", src, err)
	}
	if err := lg.Close(); err != nil {
		return c, fmt.Errorf("close the copy of %s: %w", src, err)
	}
	after, err := fileSize(last)
	if err != nil {
		return c, err
	}
	rep, err := commitlog.Verify(dst)
	if err != nil {
		return c, fmt.Errorf("verify the copy of %s: %w", src, err)
	}
	if rep.TornTail != nil {
		return c, fmt.Errorf("verify the copy of %s: %s at byte %d: %s", src, rep.TornTail.File, rep.TornTail.Position, rep.TornTail.Reason)
	}
	c.segments, c.records, c.bytes, c.torn = len(rep.Segments), rep.Records, rep.Bytes, before-after
	return c, nil
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
