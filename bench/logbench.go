package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/felixmq/felix/commitlog"
)

// LogConfig describes one RunLog case: durable log appends from
// concurrent writers. The zero value is a valid case: one writer appending
// one 256-byte record at a time for 3 s under the interval sync policy, in
// a fresh log under os.TempDir(), without warm-up.
type LogConfig struct {
	// Dir is where the case's log directory is created (and removed
	// unless Keep). Default os.TempDir().
	Dir string `json:"dir"`
	// Sync is the log's sync policy. Default commitlog.SyncInterval (the
	// zero SyncPolicy's meaning in commitlog.Options).
	Sync commitlog.SyncPolicy `json:"-"`
	// SyncName is Sync as text, filled in by RunLog.
	SyncName string `json:"sync"`
	// Writers is the number of concurrent appenders. Default 1.
	Writers int `json:"writers"`
	// RecordBytes is each record's payload size (≥ 0). Default 256; set
	// EmptyRecords for 0-byte records.
	RecordBytes  int  `json:"record_bytes"`
	EmptyRecords bool `json:"empty_records,omitempty"`
	// Batch is the number of records per Append. Default 1.
	Batch int `json:"batch"`
	// Warmup is appended first and not measured. Default 0.
	Warmup time.Duration `json:"warmup_ns"`
	// Duration is the measured time. Default 3 s.
	Duration time.Duration `json:"duration_ns"`
	// SyncInterval and SegmentBytes are passed to commitlog.Options
	// (0: the commitlog defaults).
	SyncInterval time.Duration `json:"sync_interval_ns"`
	SegmentBytes int64         `json:"segment_bytes"`
	// Keep leaves the log directory behind.
	Keep bool `json:"keep,omitempty"`
}

// DefaultLogDuration is a zero LogConfig's measured time.
const DefaultLogDuration = 3 * time.Second

func (c LogConfig) withDefaults() (LogConfig, error) {
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Writers == 0 {
		c.Writers = 1
	}
	if c.RecordBytes == 0 && !c.EmptyRecords {
		c.RecordBytes = DefaultPayloadSize
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.Duration == 0 {
		c.Duration = DefaultLogDuration
	}
	c.SyncName = c.Sync.String()
	if c.Writers < 0 || c.RecordBytes < 0 || c.Batch < 0 || c.Warmup < 0 || c.Duration < 0 ||
		c.SyncInterval < 0 || c.SegmentBytes < 0 {
		return c, fmt.Errorf("bench: negative value in log config %+v", c)
	}
	return c, nil
}

// LogResult is one RunLog case; everything but Config covers the measured
// phase only.
type LogResult struct {
	Config LogConfig `json:"config"` // with defaults filled in
	// Latency is each Append call's time to its return (acknowledged:
	// under SyncAlways, fsynced).
	Latency Summary `json:"latency"`
	// Appends and Records count acknowledged appends and their records.
	Appends int64 `json:"appends"`
	Records int64 `json:"records"`
	// Fsyncs counts the log's fsync calls.
	Fsyncs uint64 `json:"fsyncs"`
	// Duration is the measured phase's length.
	Duration         time.Duration `json:"duration_ns"`
	AppendsPerSec    float64       `json:"appends_per_sec"`
	RecordsPerSec    float64       `json:"records_per_sec"`
	MBPerSec         float64       `json:"mb_per_sec"`
	FsyncsPerSec     float64       `json:"fsyncs_per_sec"`
	AppendsPerFsync  float64       `json:"appends_per_fsync"` // 0 without fsyncs
	FailedAppends    int64         `json:"failed_appends"`
	FirstAppendError string        `json:"first_append_error,omitempty"`
}

// RunLog measures cfg.Writers goroutines appending to a fresh durable log
// in a new directory under cfg.Dir: first for cfg.Warmup (not measured),
// then for cfg.Duration. An append that fails stops its writer and the run
// returns an error with the result.
func RunLog(ctx context.Context, cfg LogConfig) (res LogResult, err error) {
	cfg, err = cfg.withDefaults()
	res.Config = cfg
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "felix-log-bench-")
	if err != nil {
		return res, fmt.Errorf("bench: log dir: %w", err)
	}
	if !cfg.Keep {
		defer os.RemoveAll(dir)
	}
	l, err := commitlog.Open(dir, commitlog.Options{Sync: cfg.Sync, SyncInterval: cfg.SyncInterval,
		SegmentBytes: cfg.SegmentBytes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, fmt.Errorf("bench: open log: %w", err)
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bench: close log: %w", cerr)
		}
	}()
	batch := newPayloads(cfg.Batch, max(cfg.RecordBytes, 1))
	for i := range batch {
		batch[i] = batch[i][:cfg.RecordBytes]
	}
	if cfg.Warmup > 0 {
		if _, err := appendFor(ctx, l, batch, cfg.Writers, cfg.Warmup); err != nil {
			return res, fmt.Errorf("bench: log warm-up: %w", err)
		}
	}
	fsyncs := l.Stats().Fsyncs
	start := time.Now()
	hist, err := appendFor(ctx, l, batch, cfg.Writers, cfg.Duration)
	res.Duration = time.Since(start)
	res.Fsyncs = l.Stats().Fsyncs - fsyncs
	res.Latency = hist.Summary()
	res.Appends = res.Latency.Count
	res.Records = res.Appends * int64(cfg.Batch)
	if secs := res.Duration.Seconds(); secs > 0 {
		res.AppendsPerSec = float64(res.Appends) / secs
		res.RecordsPerSec = float64(res.Records) / secs
		res.MBPerSec = res.RecordsPerSec * float64(cfg.RecordBytes) / 1e6
		res.FsyncsPerSec = float64(res.Fsyncs) / secs
	}
	if res.Fsyncs > 0 {
		res.AppendsPerFsync = float64(res.Appends) / float64(res.Fsyncs)
	}
	if err != nil {
		res.FailedAppends = 1
		res.FirstAppendError = err.Error()
		return res, fmt.Errorf("bench: log append: %w", err)
	}
	return res, ctx.Err()
}

// appendFor runs writers goroutines appending batch to l for d (or until
// ctx ends or an append fails) and returns their merged latencies.
func appendFor(ctx context.Context, l *commitlog.DiskLog, batch [][]byte, writers int, d time.Duration) (*Histogram, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	hists := make([]*Histogram, writers)
	errs := make([]error, writers)
	// The append itself is not cancelled by the phase's end: one that
	// started finishes and counts.
	appendCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for i := range writers {
		hists[i] = NewHistogram()
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if _, err := l.Append(appendCtx, batch); err != nil {
					errs[i] = err
					cancel()
					return
				}
				hists[i].Record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	all := NewHistogram()
	for _, h := range hists {
		all.Merge(h)
	}
	return all, errors.Join(errs...)
}

// LogRows converts log results to rows: system "felix", rate in records/s,
// drops the failed appends.
func LogRows(results []LogResult) []Row {
	rows := make([]Row, 0, len(results))
	for _, r := range results {
		c := r.Config
		rows = append(rows, Row{
			Case:   fmt.Sprintf("sync=%s writers=%d record=%d batch=%d", c.SyncName, c.Writers, c.RecordBytes, c.Batch),
			System: "felix", Felix: true, Latency: r.Latency,
			Rate: r.RecordsPerSec, Unit: "records/s", MBPerSec: r.MBPerSec, Drops: r.FailedAppends,
		})
	}
	return numberRounds(rows)
}

// LogNotes gives each case's fsync figures (group commit: appends per
// fsync).
func LogNotes(results []LogResult) []string {
	var notes []string
	for _, r := range results {
		c := r.Config
		per := "-"
		if r.AppendsPerFsync > 0 {
			per = fmt.Sprintf("%.1f", r.AppendsPerFsync)
		}
		notes = append(notes, fmt.Sprintf("sync=%s writers=%d: %.0f appends/s, %.0f fsyncs/s, %s appends per fsync",
			c.SyncName, c.Writers, r.AppendsPerSec, r.FsyncsPerSec, per))
	}
	return notes
}
