package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/queue"
)

// ReconcileGroupStates makes the durable state of every consumer group of
// the durable stream k (kept under stateDir, QueueOptions.StateDir) agree
// with the stream's log lg, just opened: a group whose state goes beyond
// the log's end (the log lost its unsynced tail in a crash, or was
// restored from an older copy) gets a snapshot that drops what lies beyond
// it (queue.ClampState), with a warning naming the stream, the group, its
// cursor and the log's end.
//
// Call it after opening a durable stream's log and before declaring the
// stream, so before anything can be published to it: groups open lazily,
// at their first consumer or stats call, and a group clamping its state
// only then would count the records published meanwhile, which take the
// offsets its state calls acked, as delivered, and never deliver them.
// Each group's state log is opened, read from its latest snapshot, and
// closed; none stays open. A stream without groups costs one failed
// directory open. stateDir "" (no durable group state) does nothing.
//
// A group whose state cannot be read (corrupt) is left as it is with a
// warning: opening it fails the same way, so it cannot deliver wrongly.
// Any other failure (the state cannot be opened or written) is returned,
// and the stream should not be served.
func ReconcileGroupStates(stateDir string, k broker.StreamKey, lg commitlog.Log, logger *slog.Logger) error {
	if stateDir == "" {
		return nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	dir := commitlog.DirFor(stateDir, k.Tenant, k.Namespace, k.Stream)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reconcile queue group state of %s: %w", k, err)
	}
	end := lg.Next()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		gdir := filepath.Join(dir, e.Name())
		res, err := clampGroupState(gdir, end, logger)
		switch {
		case errors.Is(err, queue.ErrCorruptState) || errors.Is(err, commitlog.ErrCorrupt):
			logger.Warn("queue group state unreadable, not reconciled with its stream's log: the group will not open until it is repaired or removed",
				"stream", k.String(), "state_dir", gdir, "err", err)
		case err != nil:
			return fmt.Errorf("reconcile queue group state of %s in %s: %w", k, gdir, err)
		case res.Clamped:
			logger.Warn("queue group state beyond its stream's end clamped: the log lost records the group had seen (a crash lost its unsynced tail, or it was restored from an older copy); records from the end on are delivered as new",
				"stream", k.String(), "group", res.Group, "cursor", res.Cursor, "end", end, "state_dir", gdir)
		}
	}
	return nil
}

// clampGroupState opens the group state log in dir, clamps it to end and
// closes it.
func clampGroupState(dir string, end uint64, logger *slog.Logger) (res queue.ClampedState, err error) {
	// ClampState syncs what it writes. Only the log's warnings (a torn
	// tail cut) are passed on: an info line per group at every start is
	// noise; the group logs its open when it opens.
	sl, err := commitlog.Open(dir, commitlog.Options{Sync: commitlog.SyncNever, Logger: slog.New(warnOnly{logger.Handler()})})
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, sl.Close()) }()
	return queue.ClampState(sl, end)
}

// warnOnly passes on its handler's warnings and errors only.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(as)} }

func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }
