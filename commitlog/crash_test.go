package commitlog

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashDirEnv = "FELIX_COMMITLOG_CRASH_DIR"

// TestCrashHelperProcess is the child of TestCrashRecovery, not a test on
// its own: it appends under SyncAlways from several goroutines and prints
// one line per acknowledged append until it is killed.
func TestCrashHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	run := os.Getenv("FELIX_COMMITLOG_CRASH_RUN")
	l, err := Open(dir, Options{Sync: SyncAlways, SegmentBytes: 8 << 10, Logger: quietLogger()})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	deadline := time.Now().Add(20 * time.Second) // never outlive a lost parent by much
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for s := 0; time.Now().Before(deadline); s++ {
				n := 1 + (w+s)%3
				ps := make([][]byte, n)
				for i := range ps {
					ps[i] = []byte(crashPayload(run, w, s, i))
				}
				first, err := l.Append(context.Background(), ps)
				if err != nil {
					fmt.Println("append:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("ack %d %d %s %d %d\n", first, n, run, w, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(3)
}

func crashPayload(run string, w, s, i int) string {
	return fmt.Sprintf("run %s writer %d seq %d item %d %s", run, w, s, i, strings.Repeat("z", (w*7+s)%90))
}

// TestCrashRecovery kills a process appending under SyncAlways with SIGKILL
// at random moments, several times over one log, and checks after each
// kill that every acknowledged record is there exactly once, in order, and
// that the directory verifies.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	type ack struct {
		first    uint64
		n        int
		run      string
		w, s     int
		killedAt int
	}
	var acks []ack
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for run := range 5 {
		killAfter := 1 + rng.IntN(150)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("FELIX_COMMITLOG_CRASH_RUN=%d", run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
		sc := bufio.NewScanner(out)
		seen := 0
		for sc.Scan() {
			var a ack
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d %s %d %d", &a.first, &a.n, &a.run, &a.w, &a.s); err != nil {
				t.Fatalf("run %d: helper said %q", run, sc.Text())
			}
			a.killedAt = run
			acks = append(acks, a)
			if seen++; seen == killAfter {
				cmd.Process.Kill() // SIGKILL; lines already printed still count
			}
		}
		timer.Stop()
		cmd.Wait()
		if seen < killAfter {
			t.Fatalf("run %d: helper stopped after %d acks, before the kill at %d", run, seen, killAfter)
		}

		// Before any repair: no corruption (a torn tail is allowed).
		if _, err := Verify(dir); err != nil {
			t.Fatalf("run %d: Verify after SIGKILL: %v", run, err)
		}
		l, err := Open(dir, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatalf("run %d: Open after SIGKILL: %v", run, err)
		}
		rs := readAll(t, l, 0)
		l.Close()
		seenPayload := map[string]uint64{}
		for i, r := range rs {
			if r.Offset != uint64(i) {
				t.Fatalf("run %d: record %d has offset %d", run, i, r.Offset)
			}
			if prev, dup := seenPayload[string(r.Payload)]; dup {
				t.Fatalf("run %d: %q at offsets %d and %d", run, r.Payload, prev, r.Offset)
			}
			seenPayload[string(r.Payload)] = r.Offset
		}
		for _, a := range acks {
			for i := range a.n {
				off := a.first + uint64(i)
				want := crashPayload(a.run, a.w, a.s, i)
				if off >= uint64(len(rs)) || string(rs[off].Payload) != want {
					t.Fatalf("run %d: acknowledged record %q (offset %d, acked in run %d) is missing; log has %d records", run, want, off, a.killedAt, len(rs))
				}
			}
		}
		if _, err := Verify(dir); err != nil {
			t.Fatalf("run %d: Verify after recovery: %v", run, err)
		}
		t.Logf("run %d: killed after %d acks; log holds %d records in %d segments", run, killAfter, len(rs), len(segments(t, dir)))
	}
}
