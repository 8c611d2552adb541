package main

import (
	"strings"
	"testing"
)

// helpLine is the line of `felix args... --help` that documents flag.
func helpLine(t *testing.T, flag string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, append(args, "--help")...)
	if err != nil {
		t.Fatalf("felix %s --help: %v", strings.Join(args, " "), err)
	}
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), flag+" ") {
			return l
		}
	}
	t.Fatalf("felix %s --help has no %s:\n%s", strings.Join(args, " "), flag, out)
	return ""
}

// Each felix bench's --addr says what an external broker must declare for
// that benchmark, as its description does: the queue benchmark's durable
// stream is default/default/queuebench, not the pub/sub benchmark's
// stream (and cache) default/default/bench, which the help of every
// benchmark used to name.
func TestBenchAddrHelpNamesWhatEachNeeds(t *testing.T) {
	for bench, want := range map[string]string{
		"pubsub":  "the stream default/default/bench",
		"matrix":  "the stream default/default/bench",
		"cache":   "the cache default/default/bench",
		"queue":   "the durable stream default/default/queuebench",
		"request": "needs no declaration",
		"soak":    "the streams and the cache named above",
	} {
		if l := helpLine(t, "--addr", "bench", bench); !strings.Contains(l, want) {
			t.Errorf("felix bench %s --help: %q, want %q", bench, l, want)
		}
	}
}
