package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// Streams refused by the auto-create bound (MaxAutoCreatedStreams) are
// counted, exactly, and logged at most once every 10 seconds of the
// broker's clock, with the count so far.
func TestHunt14AutoCreateRefusalsCounted(t *testing.T) {
	clock := testclock.New()
	var logs bytes.Buffer
	b := New(Options{AutoCreateStreams: true, MaxAutoCreatedStreams: 1, Clock: clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer b.Close()
	if _, err := b.Stream("t", "ns", "first"); err != nil {
		t.Fatal(err)
	}
	refuse := func(name string) {
		t.Helper()
		if _, err := b.Stream("t", "ns", name); !errors.Is(err, ErrTooManyStreams) {
			t.Fatalf("stream %s: %v, want ErrTooManyStreams", name, err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		refuse(name)
	}
	if _, err := b.Stream("t", "ns", "first"); err != nil { // an existing one is never refused
		t.Fatal(err)
	}
	if n := b.AutoCreateRefused(); n != 3 {
		t.Fatalf("AutoCreateRefused %d, want 3", n)
	}
	clock.Advance(9 * time.Second)
	refuse("d")
	clock.Advance(time.Second)
	refuse("e")
	if n := b.AutoCreateRefused(); n != 5 {
		t.Fatalf("AutoCreateRefused %d, want 5", n)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "refused_total=1") || !strings.Contains(lines[1], "refused_total=5") ||
		!strings.Contains(lines[1], "stream=t/ns/e") {
		t.Fatalf("log lines %q, want 2 (the first refusal, then the one 10 s later with the total 5)", lines)
	}
}
