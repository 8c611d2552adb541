package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/server"
)

// streamDir is where a durable stream's log lives: one escaped directory
// level per name part under <data-dir>/streams.
func streamDir(dataDir string, k broker.StreamKey) string {
	return commitlog.DirFor(dataDir, "streams", k.Tenant, k.Namespace, k.Stream)
}

// groupsDir is where queue groups on durable streams keep their state.
func groupsDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return commitlog.DirFor(dataDir, "groups")
}

// openDurableStreams opens (or creates) the log of every durable stream,
// reconciles its queue groups' state with the log's end, and declares the
// streams. Logs already opened are closed on failure.
func openDurableStreams(b *broker.Broker, f serveFlags, policy commitlog.SyncPolicy, onSync func(time.Duration), log *slog.Logger) error {
	for _, v := range f.durableStreams {
		name, pol, hasPol := strings.Cut(v, ":")
		streamPolicy := policy
		if hasPol {
			p, err := commitlog.ParseSyncPolicy(pol)
			if err != nil {
				return fmt.Errorf("--durable-stream %q: %w", v, err)
			}
			streamPolicy = p
		}
		parts := strings.Split(name, "/")
		if len(parts) != 3 {
			return fmt.Errorf("--durable-stream %q: want tenant/namespace/name[:always|interval|never]", v)
		}
		k := broker.StreamKey{Tenant: parts[0], Namespace: parts[1], Stream: parts[2]}
		for _, n := range parts {
			if err := broker.ValidateName("name", n); err != nil {
				return fmt.Errorf("--durable-stream %q: %w", v, err)
			}
		}
		dir := streamDir(f.dataDir, k)
		lg, err := commitlog.Open(dir, streamLogOptions(f, streamPolicy, onSync, log))
		if err != nil {
			return fmt.Errorf("--durable-stream %q: open log in %s: %w", v, dir, err)
		}
		// Before the stream takes publishes: see server.ReconcileGroupStates.
		if err := server.ReconcileGroupStates(groupsDir(f.dataDir), k, lg, log); err != nil {
			lg.Close()
			return fmt.Errorf("--durable-stream %q: %w", v, err)
		}
		if _, err := b.DeclareLoggedStream(k.Tenant, k.Namespace, k.Stream, broker.StreamOptions{Log: lg, Durable: true}); err != nil {
			lg.Close()
			return fmt.Errorf("--durable-stream %q: %w", v, err)
		}
		log.Info("durable stream opened", "stream", k.String(), "dir", dir, "fsync", streamPolicy.String(),
			"next_offset", lg.Next(), "oldest_offset", lg.Oldest(), "loss_window", lossWindow(streamPolicy, f))
	}
	return nil
}

// streamLogOptions are the options of a durable stream's log: those of
// --durable-stream, and the base of the control plane's durable streams
// (which replace Sync and the retention with their own). A segment is
// sealed in the background (RollInBackground), as the queue groups'
// state logs are: the publish that fills it does not wait for the fsync
// of the whole segment, and segments may reach twice --segment-bytes.
func streamLogOptions(f serveFlags, policy commitlog.SyncPolicy, onSync func(time.Duration), log *slog.Logger) commitlog.Options {
	return commitlog.Options{
		Sync: policy, SyncInterval: f.fsyncInterval, SegmentBytes: f.segmentBytes, RollInBackground: true,
		RetentionBytes: f.retentionBytes, RetentionAge: f.retentionAge, Logger: log, OnSync: onSync,
	}
}

// lossWindow states, for the startup log, what a crash can lose.
func lossWindow(p commitlog.SyncPolicy, f serveFlags) string {
	switch p {
	case commitlog.SyncAlways:
		return "none: acks wait for fsync"
	case commitlog.SyncInterval:
		return fmt.Sprintf("up to %v of acknowledged records on power loss (process crashes lose nothing written)", f.fsyncInterval)
	}
	return "unbounded on power loss: the OS decides when to write (process crashes lose nothing written)"
}

// dropOrphanGroupStates removes, at start, the queue group state of
// every stream whose log directory is gone (an operator reset the stream
// by deleting it): the state's acks and cursor describe records that no
// longer exist, and the new records taking their offsets would count as
// acked and never be delivered. The groups start over on the new log, as
// after a stream deleted through the control plane.
func dropOrphanGroupStates(dataDir string, log *slog.Logger) error {
	if dataDir == "" {
		return nil
	}
	groups, streams := groupsDir(dataDir), filepath.Join(dataDir, "streams")
	return eachStreamDir(groups, func(state string, parts ...string) error {
		logDir := filepath.Join(append([]string{streams}, parts...)...)
		if _, err := os.Stat(logDir); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err := os.RemoveAll(state); err != nil {
			return fmt.Errorf("remove queue group state left without its stream's log: %w", err)
		}
		log.Warn("queue group state without its stream's log removed: the groups start over at the new log's first record",
			"stream", streamName(parts...), "log_dir", logDir, "state_dir", state)
		return nil
	})
}

// reportUnservedLogs warns about every log directory under
// <data-dir>/streams that no durable stream of b serves: one whose stream
// is now declared in memory, or not at all (taken out of the config,
// moved to another namespace, deleted from an external control plane
// while the broker was down). Its records stay on disk, unserved, until
// the stream is declared durable again or the directory is removed.
func reportUnservedLogs(b *broker.Broker, dataDir string, log *slog.Logger) {
	if dataDir == "" {
		return
	}
	declared := map[string]string{} // log dir → how its stream is declared
	for _, st := range b.Streams() {
		declared[streamDir(dataDir, st.Key())] = "in-memory"
		if st.IsDurable() {
			declared[streamDir(dataDir, st.Key())] = "durable"
		}
	}
	eachStreamDir(filepath.Join(dataDir, "streams"), func(dir string, parts ...string) error {
		if how := cmp.Or(declared[dir], "no"); how != "durable" {
			log.Warn("durable log not served: no durable stream of its name is declared; its records stay on disk",
				"stream", streamName(parts...), "dir", dir, "declared", how,
				"fix", "declare the stream durable (--durable-stream or the control plane) to serve them, or remove the directory")
		}
		return nil
	})
}

// eachStreamDir calls fn with every directory root/tenant/namespace/stream
// (as commitlog.DirFor names them: the streams' logs, the groups' state)
// and its three escaped parts, until fn fails. Directories it cannot read
// are skipped.
func eachStreamDir(root string, fn func(dir string, parts ...string) error) error {
	var walk func(dir string, parts []string) error
	walk = func(dir string, parts []string) error {
		if len(parts) == 3 {
			return fn(dir, parts...)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if err := walk(filepath.Join(dir, e.Name()), append(parts[:len(parts):len(parts)], e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, nil)
}

// streamName is the tenant/namespace/name a log or group state directory
// of commitlog.DirFor stands for (a part as is when it cannot say: a long
// name's hashed form).
func streamName(dirs ...string) string {
	names := make([]string, len(dirs))
	for i, d := range dirs {
		names[i] = d
		if name, err := url.PathUnescape(d); err == nil {
			names[i] = name
		}
	}
	return strings.Join(names, "/")
}
