package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// felixBinary is the felix binary built for this test run (buildFelix).
var felixBinary struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildFelix compiles the felix binary, once per test run, into a
// temporary directory that TestMain removes.
func buildFelix(t *testing.T) string {
	t.Helper()
	felixBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "felix-e2e-bin-")
		if err != nil {
			felixBinary.err = err
			return
		}
		felixBinary.dir = dir
		bin := filepath.Join(dir, "felix")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/felixmq/felix/cmd/felix").CombinedOutput(); err != nil {
			felixBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		felixBinary.path = bin
	})
	if felixBinary.err != nil {
		t.Fatal(felixBinary.err)
	}
	return felixBinary.path
}

func removeFelixBinary() {
	if felixBinary.dir != "" {
		_ = os.RemoveAll(felixBinary.dir)
	}
}

// processTest is the start of a test that runs felix serve processes: it
// skips in -short mode and returns the binary, a data directory and a
// free address.
func processTest(t *testing.T) (bin, dataDir, addr string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs broker processes")
	}
	return buildFelix(t), t.TempDir(), freeUDP(t)
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

type brokerProc struct {
	cmd  *exec.Cmd
	logs bytes.Buffer
	done chan error
}

func startFelix(t *testing.T, bin, addr, dataDir string, args ...string) *brokerProc {
	t.Helper()
	p := &brokerProc{done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--no-dev-defaults",
		"--log-level", "warn", "--metrics-addr", "127.0.0.1:0", "--controlplane-addr", "off"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// killAndRestart SIGKILLs p, closes c, starts the broker again with args
// and returns it (stopped by SIGTERM when the test ends) and a new client
// (closed then).
func killAndRestart(t *testing.T, p *brokerProc, c *client.Client, bin, addr, dataDir string, args ...string) (*brokerProc, *client.Client) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	c.Close()
	p = startFelix(t, bin, addr, dataDir, args...)
	t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGTERM); <-p.done })
	c = dialProc(t, addr, dataDir)
	t.Cleanup(func() { c.Close() })
	return p, c
}

// dialResuming dials a broker process with a client that reconnects
// quickly (backoff at most 200 ms), closed when the test ends.
func dialResuming(t *testing.T, ctx context.Context, addr, dataDir string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: filepath.Join(dataDir, "dev-cert.pem"),
		Reconnect: client.ReconnectPolicy{MaxBackoff: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialProc(t *testing.T, addr, dataDir string) *client.Client {
	t.Helper()
	return dialUntilUp(t, addr, dataDir, client.Options{Reconnect: client.ReconnectPolicy{Disabled: true}, RequestTimeout: 5 * time.Second})
}

// dialUntilUp dials the broker process at addr (trusting its development
// certificate in dataDir) with opts until it answers, for up to 20 s.
func dialUntilUp(t *testing.T, addr, dataDir string, opts client.Options) *client.Client {
	t.Helper()
	opts.CAFile = filepath.Join(dataDir, "dev-cert.pem")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := client.Dial(ctx, addr, opts)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A publisher with per-message acks runs while the broker process is
// killed with SIGKILL and restarted, several times. Afterwards every acked
// record is in the log exactly once, in order, and the log verifies.
func TestDurableCrashSIGKILL(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	rng := rand.New(rand.NewPCG(7, 11))
	acked := map[uint64]bool{}
	next := uint64(0) // sequence numbers are never reused: an unacked one may or may not be stored
	const cycles = 4
	for cycle := range cycles {
		p := startFelix(t, bin, addr, dataDir, "--durable-stream", "default/default/crash", "--fsync", "always")
		c := dialProc(t, addr, dataDir)
		killAt := time.Now().Add(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		killed := make(chan struct{})
		go func() {
			time.Sleep(time.Until(killAt))
			p.cmd.Process.Signal(syscall.SIGKILL)
			close(killed)
		}()
		for {
			s := next
			next++
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Publish(ctx, "default", "crash", seq(s, 24), client.WithAck(wire.AckPerMessage))
			cancel()
			if err != nil {
				break // the broker is gone: this one is unacked
			}
			acked[s] = true
		}
		<-killed
		<-p.done
		c.Close()
		t.Logf("cycle %d: %d acked so far, next seq %d", cycle, len(acked), next)
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acked")
	}
	// Read the log directly and check it.
	logDir := filepath.Join(dataDir, "streams", "default", "default", "crash")
	seen := map[uint64]int{}
	prev := int64(-1)
	forEachRecord(t, logDir, func(r commitlog.Record) {
		s := binary.BigEndian.Uint64(r.Payload)
		if int64(s) <= prev {
			t.Fatalf("out of order: seq %d after %d", s, prev)
		}
		prev = int64(s)
		seen[s]++
	})
	for s := range acked {
		if seen[s] != 1 {
			t.Fatalf("acked seq %d present %d times", s, seen[s])
		}
	}
	t.Logf("%d acked, %d stored (unacked but stored: %d)", len(acked), len(seen), len(seen)-len(acked))
}

// Queue state survives SIGKILL: after a restart no acked record is
// delivered again and every unacked one is (at-least-once).
func TestQueueDurableSIGKILL(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	args := []string{"--durable-stream", "default/default/jobs:always"}
	p := startFelix(t, bin, addr, dataDir, args...)
	c := dialProc(t, addr, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const total, ackFirst = 200, 100
	for i := range uint64(total) {
		if err := c.Publish(ctx, "default", "jobs", seq(i, 16)); err != nil {
			t.Fatal(err)
		}
	}
	co, err := c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(10))
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	for len(acked) < ackFirst {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		acked[m.Offset] = true
	}
	held := map[uint64]bool{} // delivered, never acked
	for len(held) < 5 {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held[m.Offset] = true
	}
	p, c = killAndRestart(t, p, c, bin, addr, dataDir, args...)
	co, err = c.Consumer(ctx, "default", "jobs", "g", client.WithPrefetch(50))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]bool{}
	for len(got) < total-ackFirst {
		m, err := co.Next(ctx)
		if err != nil {
			t.Fatalf("after %d redeliveries: %v", len(got), err)
		}
		if acked[m.Offset] {
			t.Fatalf("offset %d was acked before the crash and delivered again", m.Offset)
		}
		if held[m.Offset] && m.Attempt < 2 {
			t.Fatalf("offset %d was in flight at the crash; attempt %d, want ≥ 2", m.Offset, m.Attempt)
		}
		got[m.Offset] = true
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for off := range held {
		if !got[off] {
			t.Fatalf("unacked offset %d not redelivered after the restart", off)
		}
	}
}
