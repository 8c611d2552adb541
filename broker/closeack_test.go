package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testwait"
)

// afterAppendLog runs hook after every Append that wrote its records: the
// publisher then has offsets in the log but has not fanned them out.
type afterAppendLog struct {
	commitlog.Log
	hook func()
}

func (l *afterAppendLog) Append(ctx context.Context, p [][]byte) (uint64, error) {
	first, err := l.Log.Append(ctx, p)
	if err == nil {
		l.hook()
	}
	return first, err
}

// openDiskLog opens a SyncAlways disk log in dir.
func openDiskLog(t *testing.T, dir string) *commitlog.DiskLog {
	t.Helper()
	dl, err := commitlog.Open(dir, commitlog.Options{Sync: commitlog.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	return dl
}

// readBack reopens the log in dir (as a restarted broker does) and returns
// the sequence numbers of its records.
func readBack(t *testing.T, dir string) []uint64 {
	t.Helper()
	dl := openDiskLog(t, dir)
	defer dl.Close()
	recs, err := dl.Read(0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, r := range recs {
		if len(r.Payload) != 8 {
			t.Fatalf("record %d: payload of %d bytes, want 8", r.Offset, len(r.Payload))
		}
		out = append(out, binary.BigEndian.Uint64(r.Payload))
	}
	return out
}

// A publish to a durable stream whose records reached the log (under its
// sync policy) is acknowledged even when the broker closes before it has
// handed them to every subscriber: the records are there after a restart,
// so an error would make a client that retries store them twice. The close
// comes between the append and the fanout ("before-fanout"), or while the
// fanout waits for a full Block queue ("blocked-fanout"). The
// subscriptions still end with ErrClosed.
func TestDurablePublishStoredBeforeCloseIsAcked(t *testing.T) {
	for _, when := range []string{"before-fanout", "blocked-fanout"} {
		t.Run(when, func(t *testing.T) {
			dir := t.TempDir()
			lg := &afterAppendLog{Log: openDiskLog(t, dir), hook: func() {}}
			b, s := newLoggedStream(t, Options{QueueCapacity: 1}, lg)
			p := Block
			sub, err := s.Subscribe(SubscribeOptions{Policy: &p})
			if err != nil {
				t.Fatal(err)
			}
			var res <-chan error
			switch when {
			case "before-fanout":
				lg.hook = b.Close
				_, err := s.Publish(context.Background(), [][]byte{seqPayload(0)})
				ch := make(chan error, 1)
				ch <- err
				res = ch
			case "blocked-fanout":
				if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
					t.Fatal(err)
				}
				res, _ = publishBlocked(t, s, seqPayload(1))
				// The publish holds the stream lock a moment before its
				// append too: close only once its record is in the log
				// (and it waits on the full queue, or is about to).
				testwait.Eventually(t, "the second record in the log", func() bool { return lg.Next() == 2 })
				waitBlocked(t, s, res)
				b.Close()
			}
			if err := <-res; err != nil {
				t.Fatalf("publish stored in the log before the close: %v, want an ok", err)
			}
			if err := s.Err(); !errors.Is(err, ErrClosed) {
				t.Fatalf("stream ended with %v, want ErrClosed", err)
			}
			drain(t, sub)
			if _, _, err := sub.NextBatch(context.Background(), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("subscription after the close: %v, want ErrClosed", err)
			}
			want := uint64(1)
			if when == "blocked-fanout" {
				want = 2
			}
			checkSeq(t, readBack(t, dir), 0, want)
		})
	}
}

// A publish the broker's close cut short on a stream whose storage does
// not survive a restart (an in-memory stream, or a log not marked
// durable) still fails with ErrClosed, marked as stored
// (ErrStoredNotDelivered): the events are gone with the broker, and not
// every subscriber got them.
func TestNonDurablePublishCutByCloseFails(t *testing.T) {
	for _, kind := range []string{"ring", "memory-log"} {
		for _, when := range []string{"before-fanout", "blocked-fanout"} {
			if kind == "ring" && when == "before-fanout" {
				continue // a ring publish holds the stream lock throughout
			}
			t.Run(fmt.Sprintf("%s/%s", kind, when), func(t *testing.T) {
				b := New(Options{QueueCapacity: 1})
				t.Cleanup(b.Close)
				var s *Stream
				var err error
				lg := &afterAppendLog{Log: commitlog.NewMemory(1<<10, 1<<20), hook: func() {}}
				if kind == "ring" {
					s, err = b.DeclareStream("t", "ns", "s")
				} else {
					s, err = b.DeclareLoggedStream("t", "ns", "s", StreamOptions{Log: lg})
				}
				if err != nil {
					t.Fatal(err)
				}
				p := Block
				if _, err := s.Subscribe(SubscribeOptions{Policy: &p}); err != nil {
					t.Fatal(err)
				}
				if when == "before-fanout" {
					lg.hook = b.Close
					_, err = s.Publish(context.Background(), [][]byte{seqPayload(0)})
				} else {
					if _, err := s.Publish(context.Background(), [][]byte{seqPayload(0)}); err != nil {
						t.Fatal(err)
					}
					res, _ := publishBlocked(t, s, seqPayload(1))
					b.Close()
					err = <-res
				}
				if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrStoredNotDelivered) {
					t.Fatalf("publish cut by the close: %v, want ErrClosed and ErrStoredNotDelivered", err)
				}
			})
		}
	}
}
