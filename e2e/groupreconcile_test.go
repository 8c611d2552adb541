package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/wire"
)

// The broker process is killed after a queue group acked 4 records, and
// the machine crash loses the stream log's unsynced tail (the last 2
// records; the group's state, synced, keeps its acks of all 4). At the
// restart producers publish 3 records before any consumer of the group
// joins: they take offsets 2, 3, 4, which the group's state calls acked.
// They are delivered, since the broker cuts the group's state back to the
// log's end when it opens the log; they were lost when the group did so
// only at its first consumer.
func TestGroupStateCutBackWhenTheStreamLosesItsTail(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	args := []string{"--durable-stream", "default/default/jobs"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := startFelix(t, bin, addr, dataDir, args...)
	c := dialProc(t, addr, dataDir)
	for i := range 4 {
		if err := c.Publish(ctx, "default", "jobs", fmt.Appendf(nil, "old-%d", i), client.WithAck(wire.AckPerMessage)); err != nil {
			t.Fatal(err)
		}
	}
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(4))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		nextAck(t, ctx, co)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	c.Close()

	// The unsynced tail lost: the segment cut after its header (32 bytes)
	// and 2 records of 24+5 bytes.
	seg := filepath.Join(dataDir, "streams", "default", "default", "jobs", "00000000000000000000.log")
	if err := os.Truncate(seg, 32+2*(24+5)); err != nil {
		t.Fatal(err)
	}

	p = startFelix(t, bin, addr, dataDir, args...)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
		}
	}
	defer stop()
	c = dialProc(t, addr, dataDir)
	defer c.Close()
	for i := range 3 {
		if err := c.Publish(ctx, "default", "jobs", fmt.Appendf(nil, "new-%d", i), client.WithAck(wire.AckPerMessage)); err != nil {
			t.Fatal(err)
		}
	}
	co, err = c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		nctx, ncancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := co.Next(nctx)
		ncancel()
		if err != nil {
			t.Fatalf("record %d of the 3 new ones: %v (the group took them for acked ones)", i, err)
		}
		if want := fmt.Sprintf("new-%d", i); m.Offset != uint64(2+i) || string(m.Payload) != want {
			t.Fatalf("got offset %d %q, want offset %d %q", m.Offset, m.Payload, 2+i, want)
		}
	}
	c.Close()
	stop() // p.logs is written until the process ends
	if !strings.Contains(p.logs.String(), "queue group state beyond its stream's end clamped") {
		t.Errorf("no warning about the clamped group state:\n%s", p.logs.String())
	}
}
