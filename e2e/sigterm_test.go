package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// Publishers with per-message acks run while the broker process gets
// SIGTERM. Every acked publish to the in-memory stream reaches the
// subscriber (drain flushes the subscriber queues before closing), every
// acked publish to the durable stream is on disk, and the process exits 0
// within the drain bound.
func TestSIGTERMDrainsAckedPublishes(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	const drainBound = 5 * time.Second
	p := startFelix(t, bin, addr, dataDir, "--stream", "default/default/live",
		"--durable-stream", "default/default/jobs:always", "--queue-policy", "block",
		"--shutdown-timeout", drainBound.String(), "--log-level", "info")
	c := dialProc(t, addr, dataDir)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "default", "live")
	if err != nil {
		t.Fatal(err)
	}
	received := map[uint64]bool{}
	subDone := make(chan error, 1)
	go func() {
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				subDone <- err
				return
			}
			received[binary.BigEndian.Uint64(ev.Payload)] = true
		}
	}()

	// Four publishers, two per stream, each with its own sequence space.
	type result struct {
		stream string
		acked  []uint64
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
		ackedN  = make(chan struct{}, 1024)
	)
	for w := range 4 {
		stream := []string{"live", "jobs"}[w%2]
		wg.Go(func() {
			r := result{stream: stream}
			defer func() {
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}()
			for i := uint64(0); i < 1_000_000; i++ {
				s := uint64(w)<<40 | i
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Publish(pctx, "default", stream, seq(s, 32), client.WithAck(wire.AckPerMessage))
				pcancel()
				if err != nil {
					return // the broker is draining or gone: this one is unacked
				}
				r.acked = append(r.acked, s)
				select {
				case ackedN <- struct{}{}:
				default:
				}
			}
		})
	}
	for range 200 { // let publishing get going before the signal
		<-ackedN
	}
	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-p.done:
	case <-time.After(drainBound + 20*time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("broker did not exit after SIGTERM; logs:\n%s", p.logs.String())
	}
	took := time.Since(signalled)
	wg.Wait()
	if exitErr != nil {
		t.Fatalf("broker exited with %v after SIGTERM; logs:\n%s", exitErr, p.logs.String())
	}
	// The drain bound plus room for a loaded machine; a broker that does
	// not honour the bound is killed at drainBound+20s above.
	if took > drainBound+5*time.Second {
		t.Errorf("exit took %v, drain bound %v", took, drainBound)
	}
	if err := <-subDone; err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("subscription ended with %v", err)
	}

	stored := readStored(t, filepath.Join(dataDir, "streams", "default", "default", "jobs"))
	var liveAcked, jobsAcked int
	for _, r := range results {
		for _, s := range r.acked {
			switch r.stream {
			case "live":
				liveAcked++
				if !received[s] {
					t.Fatalf("acked live publish %x was not delivered", s)
				}
			case "jobs":
				jobsAcked++
				if !stored[s] {
					t.Fatalf("acked durable publish %x is not on disk", s)
				}
			}
		}
	}
	if liveAcked == 0 || jobsAcked == 0 {
		t.Fatalf("nothing acked (live %d, jobs %d)", liveAcked, jobsAcked)
	}
	t.Logf("SIGTERM drain: exit in %v; live acked %d (delivered %d), jobs acked %d (stored %d)",
		took.Round(time.Millisecond), liveAcked, len(received), jobsAcked, len(stored))
}

// readStored returns the sequence numbers in a closed durable stream's log
// after checking it verifies.
func readStored(t *testing.T, dir string) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	forEachRecord(t, dir, func(r commitlog.Record) { out[binary.BigEndian.Uint64(r.Payload)] = true })
	return out
}

// forEachRecord checks that a closed durable stream's log verifies and has
// no offset gap, then calls fn with every record in order.
func forEachRecord(t *testing.T, dir string, fn func(commitlog.Record)) {
	t.Helper()
	if _, err := commitlog.Verify(dir); err != nil {
		t.Fatalf("log does not verify: %v", err)
	}
	lg, err := commitlog.Open(dir, commitlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	for off := lg.Oldest(); off < lg.Next(); {
		recs, err := lg.Read(off, 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Offset != off {
				t.Fatalf("offset gap: got %d want %d", r.Offset, off)
			}
			fn(r)
			off++
		}
	}
}
