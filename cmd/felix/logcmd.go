package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/bench"
	"github.com/felixmq/felix/commitlog"
)

func newLogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Check, print, repair and measure durable log directories: verify, dump, repair, bench",
	}
	cmd.AddCommand(newLogVerifyCmd(), newLogDumpCmd(), newLogRepairCmd(), newLogBenchCmd())
	return cmd
}

func newLogVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Check every segment and record of a log directory without changing it",
		Long: `Check every segment and record of a log directory without changing it:
headers, lengths, CRC-32C checksums, offsets contiguous within and across
segments, and index files. Prints one line per segment, then what it found.
Exits non-zero if the log is corrupt (a broker would refuse to open it),
naming the file and byte position. A torn tail (a crash mid-write) is
reported but is not corruption: opening the log truncates it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogVerify(cmd.OutOrStdout(), args[0])
		},
	}
}

func runLogVerify(w io.Writer, dir string) error {
	if err := requireLogDir(dir); err != nil {
		return err
	}
	rep, err := commitlog.Verify(dir)
	var ce *commitlog.CorruptionError
	if err != nil && !errors.As(err, &ce) {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tFIRST\tNEXT\tRECORDS\tBYTES\tNEWEST\tINDEX")
	for _, s := range rep.Segments {
		newest := "-"
		if !s.Newest.IsZero() {
			newest = s.Newest.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", filepath.Base(s.File), s.Base, s.Next, s.Records, s.Bytes, newest, s.Index)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d records, offsets [%d, %d), %d segments, %d bytes\n", rep.Records, rep.Oldest, rep.Next, len(rep.Segments), rep.Bytes)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	if t := rep.TornTail; t != nil {
		fmt.Fprintf(w, "torn tail: %s at byte %d: %s; opening the log repairs it\n", t.File, t.Position, t.Reason)
	}
	for _, c := range rep.Corruptions {
		fmt.Fprintf(w, "CORRUPT: %s at byte %d: %s\n", c.File, c.Position, c.Reason)
	}
	if len(rep.Corruptions) > 0 {
		if n := len(rep.Corruptions); n > 1 {
			return fmt.Errorf("%w (and %d more problems)", err, n-1)
		}
		return err
	}
	fmt.Fprintln(w, "ok")
	return nil
}

func newLogRepairCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "repair DIR",
		Short: "Truncate a log's active segment at its first bad record (with --yes)",
		Long: `Repair a log directory that a broker refuses to open because its active
(newest) segment has a bad record followed by valid ones. This happens
after a machine crash under --fsync interval or never, when the OS wrote
back later blocks of unsynced data and not earlier ones.

Without --yes it only says what it would do: which file, from which byte,
and how many bytes it would drop. With --yes it truncates the active segment
at its first bad record. The valid records after that point are lost. It
then verifies the log again. Stop the broker first: the directory is locked
while a broker has it open.

Corruption in an older (sealed) segment cannot be repaired this way.
Restore that segment from a copy, or remove the log.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogRepair(cmd.OutOrStdout(), args[0], yes)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "truncate (without it: only say what would be dropped)")
	return cmd
}

func runLogRepair(w io.Writer, dir string, yes bool) error {
	if err := requireLogDir(dir); err != nil {
		return err
	}
	rep, err := commitlog.Verify(dir)
	var ce *commitlog.CorruptionError
	if err != nil && !errors.As(err, &ce) {
		return err
	}
	if len(rep.Corruptions) == 0 {
		if t := rep.TornTail; t != nil {
			fmt.Fprintf(w, "torn tail: %s at byte %d: %s; opening the log repairs it\n", t.File, t.Position, t.Reason)
		}
		fmt.Fprintln(w, "no corruption: nothing to repair")
		return nil
	}
	active := rep.Segments[len(rep.Segments)-1].File
	for _, c := range rep.Corruptions {
		if c.File != active {
			return fmt.Errorf("%s at byte %d: %s: only the active segment (%s) can be repaired; restore this segment from a copy or remove the log",
				c.File, c.Position, c.Reason, filepath.Base(active))
		}
	}
	c := rep.Corruptions[0]
	st, err := os.Stat(c.File)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s at byte %d: %s\n", c.File, c.Position, c.Reason)
	if !yes {
		fmt.Fprintf(w, "would truncate %s at byte %d, dropping %d bytes\n", filepath.Base(c.File), c.Position, st.Size()-c.Position)
		return errors.New("not repaired: run again with --yes to truncate")
	}
	lg, err := commitlog.Open(dir, commitlog.Options{RepairTail: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	if err := lg.Close(); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	fmt.Fprintf(w, "truncated %s at byte %d, dropped %d bytes\n", filepath.Base(c.File), c.Position, st.Size()-c.Position)
	if rep, err = commitlog.Verify(dir); err != nil {
		return fmt.Errorf("the log is still corrupt after the repair: %w", err)
	}
	fmt.Fprintf(w, "%d records, offsets [%d, %d): ok\n", rep.Records, rep.Oldest, rep.Next)
	return nil
}

func newLogDumpCmd() *cobra.Command {
	var from uint64
	var count int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dump DIR",
		Short: "Print the records of a log directory, without changing it",
		Long: `Print the records of a log directory, one per line, without changing it.
Text lines show offset, time (UTC), size and the payload quoted (cut at 200
bytes). With --json each line is an object: offset, timestamp, timestamp_us,
size, and payload (UTF-8 text) or payload_base64. Stops with an error at the
first corrupt record, after printing the valid ones before it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLogDir(args[0]); err != nil {
				return err
			}
			format := commitlog.DumpText
			if asJSON {
				format = commitlog.DumpJSON
			}
			return commitlog.Dump(args[0], from, count, cmd.OutOrStdout(), format)
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&from, "from", 0, "first offset to print")
	fl.IntVar(&count, "count", 0, "records to print (0 = all)")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

// maxLogsNamed bounds the logs below a directory that requireLogDir
// names, and logsBelowDepth how deep it looks for them (a data dir's
// logs are kind/tenant/namespace/name, a queue group's state
// groups/tenant/namespace/stream/group).
const (
	maxLogsNamed   = 5
	logsBelowDepth = 5
)

// requireLogDir refuses a directory that holds no log segment: a log
// directory always has one (opening a log makes it, a purge or retention
// keeps the newest). Verifying the data dir, its streams/ or caches/
// level, or a backup's root would otherwise answer "ok" about 0 records;
// the error names the logs found below it, to check each.
func requireLogDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(commitlog.SegmentBases(ents)) > 0 {
		return nil
	}
	var below []string
	more := false
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		ents, err := os.ReadDir(d)
		if err != nil || more {
			return
		}
		if depth > 0 && len(commitlog.SegmentBases(ents)) > 0 {
			if len(below) == maxLogsNamed {
				more = true
				return
			}
			rel, _ := filepath.Rel(dir, d)
			below = append(below, rel)
			return
		}
		if depth == logsBelowDepth {
			return
		}
		for _, e := range ents {
			if e.IsDir() {
				walk(filepath.Join(d, e.Name()), depth+1)
			}
		}
	}
	walk(dir, 0)
	msg := fmt.Sprintf("%s holds no log segment (*.log): not a log directory", dir)
	if len(below) > 0 {
		list := strings.Join(below, ", ")
		if more {
			list += ", …"
		}
		msg += fmt.Sprintf("; the logs below it, to check each: %s", list)
	}
	return errors.New(msg)
}

type logBenchFlags struct {
	dir          string
	recordBytes  int
	batch        int
	writers      []int
	syncs        []string
	duration     time.Duration
	syncInterval time.Duration
	segmentBytes int64
	keep         bool
}

func newLogBenchCmd() *cobra.Command {
	var f logBenchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure durable log appends: records/s, MB/s and fsyncs/s per sync policy and writer count",
		Long: `Measure durable log appends on this machine's disk. For every sync policy
and writer count, a fresh log in a temporary directory under --dir takes
appends of --batch records of --record-bytes each from that many concurrent
writers for --duration. An append counts once it is acknowledged (under
"always": fsynced). Reports appends/s, records/s, payload MB/s, fsyncs/s,
appends per fsync (group commit) and append latency. Its flags read
their FELIX_* variables as "felix bench log" and every benchmark does, so
one environment sets up both.`,
		Args:    cobra.NoArgs,
		PreRunE: benchPreRun,
		RunE: withSignals(func(ctx context.Context, cmd *cobra.Command) error {
			return runLogBench(ctx, cmd.OutOrStdout(), f)
		}),
	}
	f.register(cmd.Flags())
	annotateEnv(cmd.Flags())
	return cmd
}

func runLogBench(ctx context.Context, w io.Writer, f logBenchFlags) error {
	cfgs, err := f.configs(0)
	if err != nil {
		return err
	}
	var results []bench.LogResult
	for _, cfg := range cfgs {
		r, err := bench.RunLog(ctx, cfg)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	printLogBench(w, f, results)
	return nil
}

func printLogBench(w io.Writer, f logBenchFlags, results []bench.LogResult) {
	fmt.Fprintf(w, "durable log appends: %d-byte records, %d per append, %v per case, logs under %s\n", f.recordBytes, f.batch, f.duration, f.dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sync\twriters\tappends/s\trecords/s\tMB/s\tfsyncs/s\tappends/fsync\tp50 µs\tp99 µs\tp99.9 µs\t")
	for _, r := range results {
		perFsync := "-"
		if r.Fsyncs > 0 {
			perFsync = fmt.Sprintf("%.1f", r.AppendsPerFsync)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t%.0f\t%s\t%.1f\t%.1f\t%.1f\t\n", r.Config.Sync, r.Config.Writers,
			r.AppendsPerSec, r.RecordsPerSec, r.MBPerSec, r.FsyncsPerSec, perFsync,
			micro(r.Latency.P50), micro(r.Latency.P99), micro(r.Latency.P999))
	}
	tw.Flush()
	for _, p := range []commitlog.SyncPolicy{commitlog.SyncAlways, commitlog.SyncInterval, commitlog.SyncNever} {
		var one, most *bench.LogResult
		for i := range results {
			r := &results[i]
			if r.Config.Sync != p {
				continue
			}
			if one == nil || r.Config.Writers < one.Config.Writers {
				one = r
			}
			if most == nil || r.Config.Writers > most.Config.Writers {
				most = r
			}
		}
		if one != nil && most != one && one.AppendsPerSec > 0 {
			fmt.Fprintf(w, "%s: %d writers ack %.1f× the records/s of %d\n", p, most.Config.Writers, most.AppendsPerSec/one.AppendsPerSec, one.Config.Writers)
		}
	}
	fmt.Fprintln(w, strings.TrimSpace(`
always: acked = fsynced (group commit shares one fsync among concurrent appends);
interval: acked = written to the OS, fsynced every --sync-interval (a machine crash loses up to that much)`))
}

func micro(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
