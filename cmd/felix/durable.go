package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
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

// openDurableStreams opens (or creates) the log of every durable stream and
// declares the streams. Logs already opened are closed on failure.
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
		lg, err := commitlog.Open(dir, commitlog.Options{
			Sync: streamPolicy, SyncInterval: f.fsyncInterval, SegmentBytes: f.segmentBytes,
			RetentionBytes: f.retentionBytes, RetentionAge: f.retentionAge, Logger: log, OnSync: onSync,
		})
		if err != nil {
			return fmt.Errorf("--durable-stream %q: open log in %s: %w", v, dir, err)
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
