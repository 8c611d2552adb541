package bench

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
)

// DurableStreamLogOptions are the options of a durable stream's log, under
// sync, in a broker this package runs in process (StartEmbeddedQueueFelixWith,
// StartEmbeddedSoakFelixWith) when BenchBrokerOptions.StreamLog is nil:
// those felix serve opens a --durable-stream with at its default flags
// (commitlog's default segment size and fsync period, no retention), a
// full segment sealed in the background (commitlog.Options.RollInBackground)
// so that the publish that fills it does not wait for its fsync. felix
// bench passes serve's own code instead (BenchBrokerOptions.StreamLog).
func DurableStreamLogOptions(sync commitlog.SyncPolicy) commitlog.Options {
	return commitlog.Options{Sync: sync, RollInBackground: true, Logger: slog.New(slog.DiscardHandler)}
}

// streamLog is the options of a durable stream's log under sync:
// StreamLog's, else DurableStreamLogOptions.
func (o BenchBrokerOptions) streamLog(sync commitlog.SyncPolicy) commitlog.Options {
	if o.StreamLog != nil {
		return o.StreamLog(sync)
	}
	return DurableStreamLogOptions(sync)
}

// openDurableStream opens the log of stream k ("tenant/ns/name") in
// dir/streams with o's options under sync and declares the stream on b,
// durable. The log is closed when the declaration fails.
func (o BenchBrokerOptions) openDurableStream(b *broker.Broker, dir, k string, sync commitlog.SyncPolicy) (*commitlog.DiskLog, error) {
	p := strings.Split(k, "/")
	if len(p) != 3 {
		return nil, fmt.Errorf("stream %q: want tenant/ns/name", k)
	}
	lg, err := commitlog.Open(commitlog.DirFor(dir, "streams", p[0], p[1], p[2]), o.streamLog(sync))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", k, err)
	}
	if _, err := b.DeclareLoggedStream(p[0], p[1], p[2], broker.StreamOptions{Log: lg, Durable: true}); err != nil {
		lg.Close()
		return nil, fmt.Errorf("stream %s: %w", k, err)
	}
	return lg, nil
}
