package main

import (
	"fmt"
	"strings"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
)

// Upper bounds of settings whose value is allocated up front, so that a typo
// (an extra zero or three) is refused at start instead of running the
// broker out of memory: --replay-ring is a slice per stream, grown up to
// that size as the stream is published to; --queue-capacity a channel per
// subscription, allocated when a client subscribes.
const (
	maxReplayRing    = 1 << 20
	maxQueueCapacity = 1 << 20
)

// Development defaults: declared unless --no-dev-defaults, and only when the
// user does not declare the same name (with other options) themselves.
const (
	devStream        = "default/default/demo"
	devDurableStream = "default/default/jobs"
	devCache         = "default/default/demo"
)

// declName is the tenant/namespace/name part of a --stream,
// --durable-stream (name[:policy]) or --cache (name[:max-bytes]) value.
func declName(v string) string {
	name, _, _ := strings.Cut(v, ":")
	return name
}

// validateDeclarations refuses a stream or cache declared more than once:
// the same name in --stream and --durable-stream, or twice in one list.
// Declaring it twice is at best redundant and at worst two different
// options (two sync policies, two capacities) of which one would win.
func (f serveFlags) validateDeclarations(bad func(key, msg string, args ...any)) {
	streams := map[string]string{} // name → the flag that declared it first
	for _, l := range []struct {
		key  string
		vals []string
	}{{"stream", f.streams}, {"durable-stream", f.durableStreams}} {
		for _, v := range l.vals {
			name := declName(v)
			if err := checkDeclaration(l.key, v); err != nil {
				bad(l.key, "%q: %v", v, err)
				continue
			}
			if first, dup := streams[name]; dup {
				bad(l.key, "stream %s declared more than once (also in %s)", name, first)
				continue
			}
			streams[name] = f.sources.describe(l.key)
		}
	}
	caches := map[string]bool{}
	for _, v := range f.caches {
		name := declName(v)
		if err := checkDeclaration("cache", v); err != nil {
			bad("cache", "%q: %v", v, err)
			continue
		}
		if caches[name] {
			bad("cache", "cache %s declared more than once", name)
		}
		caches[name] = true
	}
	if f.ringCapacity > maxReplayRing {
		bad("replay-ring", "must be at most %d events (allocated per stream), got %d", maxReplayRing, f.ringCapacity)
	}
	if f.queueCapacity > maxQueueCapacity {
		bad("queue-capacity", "must be at most %d frames (allocated per subscription), got %d", maxQueueCapacity, f.queueCapacity)
	}
}

// checkDeclaration checks the syntax of a --stream, --durable-stream or
// --cache value, so that a bad one stops the broker before anything starts
// (and fails --print-config).
func checkDeclaration(key, v string) error {
	name, opt, hasOpt := strings.Cut(v, ":")
	switch key {
	case "stream":
		if hasOpt {
			return fmt.Errorf("want tenant/namespace/name")
		}
	case "durable-stream":
		if hasOpt {
			if _, err := commitlog.ParseSyncPolicy(opt); err != nil {
				return err
			}
		}
	case "cache":
		if _, _, err := parseCacheFlag(v, 0); err != nil {
			return err
		}
	}
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return fmt.Errorf("want tenant/namespace/name")
	}
	for i, kind := range []string{"tenant", "namespace", "name"} {
		if err := broker.ValidateName(kind, parts[i]); err != nil {
			return err
		}
	}
	return nil
}

// devStreams are the development default streams (in-memory and durable)
// the flags do not declare themselves.
func (f serveFlags) devStreams() (mem, durable []string) {
	if f.noDevDefaults {
		return nil, nil
	}
	if !declares(f.streams, devStream) && !declares(f.durableStreams, devStream) {
		mem = []string{devStream}
	}
	if f.dataDir != "" && !declares(f.streams, devDurableStream) && !declares(f.durableStreams, devDurableStream) {
		durable = []string{devDurableStream}
	}
	return mem, durable
}

// devCaches are the development default caches the flags do not declare.
func (f serveFlags) devCaches() []string {
	if f.noDevDefaults || declares(f.caches, devCache) {
		return nil
	}
	return []string{devCache}
}
