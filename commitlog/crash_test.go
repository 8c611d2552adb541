package commitlog

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashDirEnv = "FELIX_COMMITLOG_CRASH_DIR"

// TestCrashHelperProcess is the child of TestCrashRecovery and
// TestCrashRecoveryGroupWrites, not a test on its own: it appends under
// SyncAlways from several goroutines and prints one line per acknowledged
// append ("ack FIRST N RUN W S") until it is killed. In mode "group" the
// appends are group writes (AppendNoWait, then WaitDurable) and another
// goroutine truncates the head as the log grows (TruncateBefore, which
// deletes without the write lock), printing "trunc OFF" before each. Mode
// "purge" is mode "group" with the log purged instead of truncated:
// "purge" before each Purge, "purged OFF" once it returned the purge point.
func TestCrashHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	run, mode := os.Getenv("FELIX_COMMITLOG_CRASH_RUN"), os.Getenv("FELIX_COMMITLOG_CRASH_MODE")
	group := mode == "group" || mode == "purge"
	segBytes := int64(8 << 10)
	if group {
		segBytes = 4 << 10
	}
	// Odd runs seal segments in the background (RollInBackground): a
	// kill may land in a background seal.
	n, _ := strconv.Atoi(run)
	rollBehind := n%2 == 1
	l, err := Open(dir, Options{Sync: SyncAlways, SegmentBytes: segBytes, RollInBackground: rollBehind, Logger: quietLogger()})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format, args...)
		mu.Unlock()
	}
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
				var first uint64
				var err error
				if group {
					var end uint64
					if first, end, err = l.AppendNoWait(ps); err == nil {
						err = l.WaitDurable(context.Background(), end)
					}
				} else {
					first, err = l.Append(context.Background(), ps)
				}
				if err != nil {
					fmt.Println("append:", err)
					os.Exit(2)
				}
				say("ack %d %d %s %d %d\n", first, n, run, w, s)
			}
		})
	}
	if mode == "purge" {
		wg.Go(func() {
			last := uint64(0)
			for time.Now().Before(deadline) {
				if l.Next() >= last+100 { // a few segments each time
					say("purge\n")
					p, _, err := l.Purge()
					if err != nil {
						fmt.Println("purge:", err)
						os.Exit(2)
					}
					say("purged %d\n", p)
					last = p
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	if mode == "group" {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if next := l.Next(); next > 60 {
					say("trunc %d\n", next-60)
					if err := l.TruncateBefore(next - 60); err != nil {
						fmt.Println("truncate:", err)
						os.Exit(2)
					}
				}
				time.Sleep(time.Millisecond)
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
func TestCrashRecovery(t *testing.T) { crashRecovery(t, "append", 5, 1, 150) }

// TestCrashRecoveryGroupWrites is TestCrashRecovery with group writes and
// the head truncated meanwhile: the log also never starts past a
// truncation that was asked for, and holds every acknowledged record at or
// above its oldest offset.
func TestCrashRecoveryGroupWrites(t *testing.T) { crashRecovery(t, "group", 3, 20, 400) }

// TestCrashRecoveryPurge is TestCrashRecoveryGroupWrites with the log
// purged instead of truncated: a kill in the middle of a Purge (its roll,
// its deletions) leaves a log that verifies and opens, with no gap; a
// purge that returned is never undone; with no purge under way at the
// kill, the log starts exactly at the last purge point; and every
// acknowledged record from the oldest offset on is there.
func TestCrashRecoveryPurge(t *testing.T) { crashRecovery(t, "purge", 4, 20, 600) }

// crashRecovery runs the helper process in mode runs times over one log,
// killing it after between minKill and minKill+spread acknowledged
// appends, and checks the log after each kill.
func crashRecovery(t *testing.T, mode string, runs, minKill, spread int) {
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
	maxTrunc := uint64(0)
	// Mode purge: the last purge point returned, whether a purge was under
	// way at the kill, and the oldest offset the last recovery found.
	purgedTo, purging, floor := uint64(0), false, uint64(0)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for run := range runs {
		killAfter := minKill + rng.IntN(spread)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("FELIX_COMMITLOG_CRASH_RUN=%d", run), "FELIX_COMMITLOG_CRASH_MODE="+mode)
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
			line := sc.Text()
			if x, ok := strings.CutPrefix(line, "trunc "); ok {
				var off uint64
				if _, err := fmt.Sscanf(x, "%d", &off); err != nil {
					t.Fatalf("run %d: helper said %q", run, line)
				}
				maxTrunc = max(maxTrunc, off)
				continue
			}
			if line == "purge" {
				purging = true
				continue
			}
			if x, ok := strings.CutPrefix(line, "purged "); ok {
				var off uint64
				if _, err := fmt.Sscanf(x, "%d", &off); err != nil {
					t.Fatalf("run %d: helper said %q", run, line)
				}
				purgedTo, purging = max(purgedTo, off), false
				continue
			}
			var a ack
			if _, err := fmt.Sscanf(line, "ack %d %d %s %d %d", &a.first, &a.n, &a.run, &a.w, &a.s); err != nil {
				t.Fatalf("run %d: helper said %q", run, line)
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
		oldest := l.Oldest()
		rs := readAll(t, l, oldest)
		l.Close()
		switch want := max(purgedTo, floor); {
		case mode != "purge" && oldest > maxTrunc:
			t.Fatalf("run %d: oldest offset %d, beyond every truncation asked for (up to %d)", run, oldest, maxTrunc)
		case mode == "purge" && oldest < want:
			t.Fatalf("run %d: oldest offset %d, below the last purge point returned (%d) or the last oldest (%d)", run, oldest, purgedTo, floor)
		case mode == "purge" && !purging && oldest != want:
			t.Fatalf("run %d: oldest offset %d with no purge under way at the kill, want %d", run, oldest, want)
		}
		if purging {
			t.Logf("run %d: killed with a purge under way", run)
		}
		floor, purging = oldest, false
		seenPayload := map[string]uint64{}
		for i, r := range rs {
			if r.Offset != oldest+uint64(i) {
				t.Fatalf("run %d: record %d has offset %d", run, i, r.Offset)
			}
			if prev, dup := seenPayload[string(r.Payload)]; dup {
				t.Fatalf("run %d: %q at offsets %d and %d", run, r.Payload, prev, r.Offset)
			}
			seenPayload[string(r.Payload)] = r.Offset
		}
		end := oldest + uint64(len(rs))
		for _, a := range acks {
			for i := range a.n {
				off := a.first + uint64(i)
				if off < oldest {
					continue // truncated, as asked
				}
				want := crashPayload(a.run, a.w, a.s, i)
				if off >= end || string(rs[off-oldest].Payload) != want {
					t.Fatalf("run %d: acknowledged record %q (offset %d, acked in run %d) is missing; log [%d, %d)", run, want, off, a.killedAt, oldest, end)
				}
			}
		}
		if _, err := Verify(dir); err != nil {
			t.Fatalf("run %d: Verify after recovery: %v", run, err)
		}
		t.Logf("run %d: killed after %d acks; log [%d, %d) in %d segments", run, killAfter, oldest, end, len(segments(t, dir)))
	}
}
