package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

// QueueBenchStream is the durable stream a queue benchmark broker
// declares ("tenant/namespace/name"); FelixQueueTarget uses it by default.
const QueueBenchStream = "default/default/queuebench"

// FelixQueueTarget is a Felix consumer group as a QueueTarget: one
// publishing client and one client (one connection) per consumer, each a
// member of the same group. Records are published with PublishBatch
// (Publish for a batch of one), acked per batch, with up to
// PublishWindow/PublishBatch calls in flight; consumers read with
// Consumer.Next and ack each message with Message.Ack.
//
// The stream must be a durable stream on the broker (queue groups need
// one). A group that is new starts at the stream's oldest record, and one
// that is not continues after its last acked record, so records an
// earlier run left unacked (or published before a new group existed) are
// delivered too: the runner acks them and counts them as Invalid.
type FelixQueueTarget struct {
	Addr string
	TLS  *tls.Config
	// Namespace and Stream name the durable stream; default the namespace
	// and name of QueueBenchStream.
	Namespace, Stream string
	// Group is the consumer group; default "queuebench" (so that runs
	// after the first on one broker find nothing left to deliver).
	Group string
	// Storage describes the broker's durability for Describe, e.g.
	// "durable stream, fsync interval".
	Storage string
	// AsyncAck acks with Message.AckAsync (fire-and-forget, as NATS's Ack)
	// instead of Message.Ack (which waits for the broker).
	AsyncAck bool

	pub     *client.Client
	clients []*client.Client
	cons    []*client.Consumer
	slots   chan struct{} // one per publish call in flight
	pubs    sync.WaitGroup
	errMu   sync.Mutex
	pubErr  error
}

// Name implements QueueTarget.
func (t *FelixQueueTarget) Name() string { return "felix" }

// Describe implements QueueTarget.
func (t *FelixQueueTarget) Describe() string {
	d := "acks: Message.Ack, returns once the broker has recorded the ack under the stream's sync policy (fsynced, shared by concurrent acks, only under --fsync always)"
	if t.AsyncAck {
		d = "acks: Message.AckAsync, fire-and-forget (returns once written to the connection)"
	}
	if t.Storage != "" {
		d += "; " + t.Storage
	}
	return d
}

func (t *FelixQueueTarget) names() (ns, stream string) {
	_, def, _ := strings.Cut(QueueBenchStream, "/")
	defNS, defStream, _ := strings.Cut(def, "/")
	ns, stream = t.Namespace, t.Stream
	if ns == "" {
		ns = defNS
	}
	if stream == "" {
		stream = defStream
	}
	return ns, stream
}

func (t *FelixQueueTarget) dial(ctx context.Context) (*client.Client, error) {
	c, err := client.Dial(ctx, t.Addr, client.Options{TLS: t.TLS, Reconnect: client.ReconnectPolicy{Disabled: true},
		PublishConns: 1, PublishStreamsPerConn: 1, EventConns: 1})
	if err != nil {
		return nil, fmt.Errorf("felix: dial %s: %w", t.Addr, err)
	}
	return c, nil
}

// Setup implements QueueTarget: it dials and joins every consumer.
func (t *FelixQueueTarget) Setup(ctx context.Context, cfg QueueConfig) (err error) {
	if t.pub != nil {
		return errors.New("felix queue target is already set up")
	}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	group := cmp.Or(t.Group, "queuebench")
	t.slots = make(chan struct{}, max(cfg.PublishWindow/cfg.PublishBatch, 1))
	t.pubErr = nil
	if t.pub, err = t.dial(ctx); err != nil {
		return err
	}
	ns, stream := t.names()
	for i := range cfg.Consumers {
		c, err := t.dial(ctx)
		if err != nil {
			return err
		}
		t.clients = append(t.clients, c)
		co, err := c.Consumer(ctx, ns, stream, group, client.WithPrefetch(cfg.Prefetch), client.WithConsumerName(fmt.Sprintf("w%d", i)))
		if err != nil {
			return fmt.Errorf("felix: join group %s on %s/%s: %w", group, ns, stream, err)
		}
		t.cons = append(t.cons, co)
	}
	return nil
}

// Publish implements QueueTarget: the batch is published on its own
// goroutine once a publish slot is free.
func (t *FelixQueueTarget) Publish(ctx context.Context, payloads [][]byte) error {
	if err := t.firstPublishErr(); err != nil {
		return err
	}
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	ns, stream := t.names()
	t.pubs.Go(func() {
		defer func() { <-t.slots }()
		var err error
		if len(payloads) == 1 {
			err = t.pub.Publish(ctx, ns, stream, payloads[0])
		} else {
			err = t.pub.PublishBatch(ctx, ns, stream, payloads)
		}
		if err != nil {
			t.errMu.Lock()
			if t.pubErr == nil {
				t.pubErr = err
			}
			t.errMu.Unlock()
		}
	})
	return nil
}

func (t *FelixQueueTarget) firstPublishErr() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.pubErr
}

// Flush implements QueueTarget.
func (t *FelixQueueTarget) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		t.pubs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return t.firstPublishErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Consume implements QueueTarget.
func (t *FelixQueueTarget) Consume(ctx context.Context, i int, acked func(payload []byte, redelivered bool, ackErr error)) error {
	co := t.cons[i]
	for {
		m, err := co.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if t.AsyncAck {
			err = m.AckAsync()
		} else {
			err = m.Ack(ctx)
		}
		if err != nil && ctx.Err() != nil {
			return nil
		}
		acked(m.Payload, m.Attempt > 1, err)
	}
}

// Close implements QueueTarget.
func (t *FelixQueueTarget) Close() error {
	var errs []error
	for _, co := range t.cons {
		errs = append(errs, co.Close())
	}
	for _, c := range t.clients {
		errs = append(errs, c.Close())
	}
	if t.pub != nil {
		errs = append(errs, t.pub.Close())
	}
	t.pubs.Wait() // publishes still in flight end with the closed client
	t.pub, t.clients, t.cons = nil, nil, nil
	return errors.Join(errs...)
}

// StartEmbeddedQueueFelix runs a broker in this process on 127.0.0.1 whose
// streams ("tenant/ns/name") are durable: commit logs with the given
// fsync policy, and consumer groups with durable state, all in a temporary
// directory that Stop removes. Clients trust its development certificate
// through the returned TLS config.
func StartEmbeddedQueueFelix(sync commitlog.SyncPolicy, streams ...string) (*FelixBroker, error) {
	return StartEmbeddedQueueFelixWith(sync, BenchBrokerOptions{}, streams...)
}

// StartEmbeddedQueueFelixWith is StartEmbeddedQueueFelix with the streams'
// logs opened with bo's options (BenchBrokerOptions.StreamLog; its cache
// options are not used).
func StartEmbeddedQueueFelixWith(sync commitlog.SyncPolicy, bo BenchBrokerOptions, streams ...string) (fb *FelixBroker, err error) {
	dir, err := os.MkdirTemp("", "felix-bench-queue-")
	if err != nil {
		return nil, err
	}
	var logs []*commitlog.DiskLog
	cleanup := func() {
		for _, lg := range logs {
			lg.Close()
		}
		os.RemoveAll(dir)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	b := broker.New(broker.Options{QueuePolicy: broker.Block})
	for _, k := range streams {
		lg, err := bo.openDurableStream(b, dir, k, sync)
		if err != nil {
			return nil, err
		}
		logs = append(logs, lg)
	}
	stls, ctls, err := devTLS(dir)
	if err != nil {
		return nil, err
	}
	addr, stop, err := serveLoopback(server.Options{Broker: b, TLS: stls, Logger: quiet,
		Queues: server.QueueOptions{StateDir: commitlog.DirFor(dir, "groups")}})
	if err != nil {
		return nil, err
	}
	return &FelixBroker{Addr: addr, TLS: ctls, Stop: func() error {
		err := stop()
		cleanup()
		return err
	}}, nil
}

// serveLoopback runs a server with opts on a free 127.0.0.1 port until
// stop, which shuts it down (10 s drain budget) and returns Serve's error.
func serveLoopback(opts server.Options) (addr string, stop func() error, err error) {
	srv, err := server.New(opts)
	if err != nil {
		return "", nil, err
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return "", nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	return srv.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(ctx), <-served)
	}, nil
}

// devTLS returns the server TLS of an embedded broker whose development
// certificate lives in dir, and a client TLS that trusts it.
func devTLS(dir string) (srv, cli *tls.Config, err error) {
	if srv, err = transport.ServerTLSConfig(transport.TLSOptions{DataDir: dir}, nil); err != nil {
		return nil, nil, err
	}
	cli, err = transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: filepath.Join(dir, transport.DevCertFile)})
	return srv, cli, err
}
