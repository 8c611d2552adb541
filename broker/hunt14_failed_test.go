package broker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/felixmq/felix/commitlog"
)

// hunt14FailingLog is a memory log whose appends fail (as a disk log after
// an I/O error it cannot go on from) once fail is set.
type hunt14FailingLog struct {
	*commitlog.Memory
	fail atomic.Bool
}

var errHunt14LogFailed = errors.New("log failed: fsync: input/output error")

func (l *hunt14FailingLog) Append(ctx context.Context, payloads [][]byte) (uint64, error) {
	if l.fail.Load() {
		return 0, errHunt14LogFailed
	}
	return l.Memory.Append(ctx, payloads)
}

// A log-backed stream whose log fails ends, and refuses every later
// publish; an unacknowledged publish is then dropped with nobody told.
// Every refused publish call is counted (StreamStats.Refused), the one
// that met the failure included, while the stream is still listed (and
// exported).
func TestHunt14FailedStreamRefusalsCounted(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	lg := &hunt14FailingLog{Memory: commitlog.NewMemory(100, 1<<20)}
	s, err := b.DeclareLoggedStream("t", "ns", "s", StreamOptions{Log: lg, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Publish(ctx, [][]byte{[]byte("ok")}); err != nil {
		t.Fatal(err)
	}
	lg.fail.Store(true)
	if _, err := s.Publish(ctx, [][]byte{[]byte("a")}); !errors.Is(err, errHunt14LogFailed) {
		t.Fatalf("publish on the failing log: %v", err)
	}
	for range 3 {
		if _, err := s.Publish(ctx, [][]byte{[]byte("b"), []byte("c")}); err == nil {
			t.Fatal("a failed stream accepted a publish")
		}
	}
	if got, err := b.LookupStream("t", "ns", "s"); err != nil || got != s {
		t.Fatalf("the failed stream is no longer listed: %v", err)
	}
	st := s.Stats()
	if st.Refused != 4 || st.PublishCalls != 1 || st.Published != 1 {
		t.Fatalf("stats %+v, want 4 refused publish calls, 1 published", st)
	}
}
