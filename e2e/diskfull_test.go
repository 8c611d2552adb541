//go:build linux

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// A broker process whose writes fail (its RLIMIT_FSIZE lowered under the
// active segment's size: EFBIG, as a full disk gives ENOSPC; Go ignores
// SIGXFSZ) refuses publishes to the durable stream with a clear error and
// stores nothing of them, keeps serving its subscribers and readers, counts
// and logs the failures, and stores publishes again as soon as writes
// succeed, without a restart. After a SIGKILL the log verifies and holds
// exactly the acked publishes, in order, and a restarted broker serves them.
func TestDiskFullEFBIGRefusesAndRecovers(t *testing.T) {
	bin, dataDir, addr := processTest(t)
	maddr := freeTCP(t)
	args := []string{"--durable-stream", "default/default/df:always", "--metrics-addr", maddr}
	p := startFelix(t, bin, addr, dataDir, args...)
	running := true
	t.Cleanup(func() {
		if running {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	c := dialProc(t, addr, dataDir)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := c.Subscribe(ctx, "default", "df", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}

	pid := p.cmd.Process.Pid
	var orig unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &orig); err != nil {
		t.Skipf("prlimit not permitted here: %v", err)
	}
	const limit = 64 << 10 // ~60 records of 1000 bytes fit in the segment
	if orig.Cur < limit {
		t.Skipf("RLIMIT_FSIZE already %d", orig.Cur)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: orig.Max}, nil); err != nil {
		t.Skipf("prlimit not permitted here: %v", err)
	}

	publish := func(s uint64) error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second) // a hang fails here
		defer pcancel()
		return c.Publish(pctx, "default", "df", seq(s, 1000), client.WithAck(wire.AckPerMessage))
	}
	var acked []uint64
	next := uint64(0)
	var full error
	for ; full == nil; next++ {
		if next == 1000 {
			t.Fatal("no publish failed past RLIMIT_FSIZE")
		}
		if full = publish(next); full == nil {
			acked = append(acked, next)
		}
	}
	checkStorageError(t, full, dataDir, "default/default/df", "file too large")
	for range 3 { // still full: refused at once, each one
		if err := publish(next); err == nil {
			t.Fatal("publish acked past RLIMIT_FSIZE")
		} else {
			checkStorageError(t, err, dataDir, "default/default/df", "file too large")
		}
		next++
	}
	if err := c.Publish(ctx, "default", "df", seq(next, 1000), client.WithAck(wire.AckNone)); err != nil {
		t.Fatal(err)
	}
	next++
	// Dropped, counted: every refused append, the unacked one included.
	waitMetric(t, maddr, `felix_storage_write_errors_total{namespace="default",stream="df",tenant="default"}`, 5)

	// Subscribers and readers are served meanwhile.
	recvSeqs(t, ctx, sub, acked, 0)
	rd, err := c.Subscribe(ctx, "default", "df", client.FromEarliest())
	if err != nil {
		t.Fatalf("subscribe while writes fail: %v", err)
	}
	recvSeqs(t, ctx, rd, acked, 0)
	rd.Close()

	// Room again: publishing resumes at the next offset, no restart.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &orig, nil); err != nil {
		t.Fatal(err)
	}
	if err := publish(next); err != nil {
		t.Fatalf("publish once writes succeed again: %v", err)
	}
	acked = append(acked, next)
	recvSeqs(t, ctx, sub, acked[len(acked)-1:], uint64(len(acked)-1))

	c.Close() // first: a client closing waits for a live broker to read its streams
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	running = false
	if !strings.Contains(p.logs.String(), "commitlog: append not written") {
		t.Errorf("no warning about the failed writes in the broker's log:\n%s", p.logs.String())
	}
	logDir := filepath.Join(dataDir, "streams", "default", "default", "df")
	if out, err := exec.Command(bin, "log", "verify", logDir).CombinedOutput(); err != nil {
		t.Fatalf("felix log verify: %v\n%s", err, out)
	}
	var stored []uint64
	forEachRecord(t, logDir, func(r commitlog.Record) { stored = append(stored, binary.BigEndian.Uint64(r.Payload)) })
	if !slices.Equal(stored, acked) {
		t.Fatalf("log holds %v, want exactly the acked %v", stored, acked)
	}

	p = startFelix(t, bin, addr, dataDir, args...)
	running = true
	c2 := dialProc(t, addr, dataDir)
	defer c2.Close()
	sub2, err := c2.Subscribe(ctx, "default", "df", client.FromEarliest())
	if err != nil {
		t.Fatal(err)
	}
	recvSeqs(t, ctx, sub2, acked, 0)
}

// checkStorageError: a publish refused by a failed write says so, names
// the stream and the OS reason, and shows no server path.
func checkStorageError(t *testing.T, err error, dataDir, stream, reason string) {
	t.Helper()
	var se *client.ServerError
	if !errors.As(err, &se) || !errors.Is(err, client.ErrStorage) {
		t.Fatalf("publish refused by the disk: %v, want the broker's error matching client.ErrStorage", err)
	}
	for _, want := range []string{"not stored", stream, reason} {
		if !strings.Contains(se.Message, want) {
			t.Fatalf("publish error %q does not say %q", se.Message, want)
		}
	}
	if strings.Contains(se.Message, dataDir) {
		t.Fatalf("publish error %q shows the broker's data dir", se.Message)
	}
}

// recvSeqs reads len(want) events and checks their sequence numbers and
// offsets (from first).
func recvSeqs(t *testing.T, ctx context.Context, sub *client.Subscription, want []uint64, first uint64) {
	t.Helper()
	for i, w := range want {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", i, len(want), err)
		}
		if got := binary.BigEndian.Uint64(ev.Payload); got != w || ev.Offset != first+uint64(i) {
			t.Fatalf("event %d: seq %d at offset %d, want seq %d at offset %d", i, got, ev.Offset, w, first+uint64(i))
		}
	}
}

var metricLine = regexp.MustCompile(`(?m)^(\S+) (\S+)$`)

// waitMetric polls /metrics until series reaches at least min.
func waitMetric(t *testing.T, addr, series string, min float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}} // no idle conns for goleak
	var last string
	for {
		resp, err := hc.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = "not exported"
			for _, m := range metricLine.FindAllStringSubmatch(string(body), -1) {
				if m[1] == series {
					last = m[2]
					if v, _ := strconv.ParseFloat(m[2], 64); v >= min {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s, want ≥ %v (err %v)", series, last, min, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
