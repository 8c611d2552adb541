package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSQueueTarget is a NATS JetStream work queue as a QueueTarget: a
// stream with the work-queue retention policy and file storage (a record
// is removed once acked), and one durable pull consumer with explicit acks
// shared by every worker. The publisher has its own connection and uses
// PublishAsync with at most PublishWindow publishes awaiting their
// PubAck; each worker has its own connection, pulls with
// Consumer.Messages (PullMaxMessages = Prefetch) and acks every message
// with DoubleAck (which waits for the server's confirmation, as Felix's
// Ack does), or with Ack (fire-and-forget) when SingleAck is set. The
// consumer's MaxAckPending is Prefetch × Consumers, Felix's bound.
//
// The server needs JetStream (StartNATS with NATSServerOptions.JetStream).
// Setup deletes and recreates the stream, Close deletes it.
type NATSQueueTarget struct {
	// URL of the server. Default DefaultNATSURL.
	URL string
	// Stream is the JetStream stream name; default "FELIXQUEUEBENCH". Its
	// subject is the name in lower case.
	Stream string
	// SingleAck acks with Ack (no confirmation awaited) instead of
	// DoubleAck. Ack latency then ends before the server has the ack.
	SingleAck bool
	// Memory uses memory storage instead of file storage.
	Memory bool

	pub     *nats.Conn
	js      jetstream.JetStream
	conns   []*nats.Conn
	iters   []jetstream.MessagesContext
	pending []jetstream.PubAckFuture // oldest first
	window  int
	pubErr  error
}

const natsQueueDurable = "workers"

// Name implements QueueTarget.
func (t *NATSQueueTarget) Name() string { return "nats-js" }

// Describe implements QueueTarget.
func (t *NATSQueueTarget) Describe() string {
	ack := "acks: DoubleAck, returns once the server has confirmed the ack"
	if t.SingleAck {
		ack = "acks: Ack, fire-and-forget (returns before the server has the ack)"
	}
	storage := "work-queue stream, file storage (nats-server's default background sync, no fsync per record)"
	if t.Memory {
		storage = "work-queue stream, memory storage"
	}
	return ack + "; " + storage
}

func (t *NATSQueueTarget) stream() string {
	if t.Stream == "" {
		return "FELIXQUEUEBENCH"
	}
	return t.Stream
}

func (t *NATSQueueTarget) subject() string { return "felixqueuebench." + t.stream() }

func (t *NATSQueueTarget) connect(name string) (*nats.Conn, error) {
	url := t.URL
	if url == "" {
		url = DefaultNATSURL
	}
	nc, err := nats.Connect(url, nats.Name(name), nats.NoReconnect())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	return nc, nil
}

// Setup implements QueueTarget: it creates the stream and the consumer
// and starts every worker's pull.
func (t *NATSQueueTarget) Setup(ctx context.Context, cfg QueueConfig) (err error) {
	if t.pub != nil {
		return errors.New("nats queue target is already set up")
	}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	t.window, t.pending, t.pubErr = cfg.PublishWindow, nil, nil
	if t.pub, err = t.connect("felix-bench-queue-pub"); err != nil {
		return err
	}
	if t.js, err = jetstream.New(t.pub, jetstream.WithPublishAsyncMaxPending(2*cfg.PublishWindow)); err != nil {
		return err
	}
	if err := t.js.DeleteStream(ctx, t.stream()); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", t.stream(), err)
	}
	storage := jetstream.FileStorage
	if t.Memory {
		storage = jetstream.MemoryStorage
	}
	if _, err := t.js.CreateStream(ctx, jetstream.StreamConfig{Name: t.stream(), Subjects: []string{t.subject()},
		Retention: jetstream.WorkQueuePolicy, Storage: storage}); err != nil {
		return fmt.Errorf("create stream %s: %w", t.stream(), err)
	}
	if _, err := t.js.CreateOrUpdateConsumer(ctx, t.stream(), jetstream.ConsumerConfig{Durable: natsQueueDurable,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxAckPending: cfg.Prefetch * cfg.Consumers}); err != nil {
		return fmt.Errorf("create consumer on %s: %w", t.stream(), err)
	}
	for i := range cfg.Consumers {
		nc, err := t.connect(fmt.Sprintf("felix-bench-queue-w%d", i))
		if err != nil {
			return err
		}
		t.conns = append(t.conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		cons, err := js.Consumer(ctx, t.stream(), natsQueueDurable)
		if err != nil {
			return fmt.Errorf("worker %d: consumer: %w", i, err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(cfg.Prefetch))
		if err != nil {
			return fmt.Errorf("worker %d: messages: %w", i, err)
		}
		t.iters = append(t.iters, it)
	}
	return nil
}

// Publish implements QueueTarget.
func (t *NATSQueueTarget) Publish(ctx context.Context, payloads [][]byte) error {
	if t.pubErr != nil {
		return t.pubErr
	}
	for _, p := range payloads {
		for len(t.pending) >= t.window {
			if err := t.awaitOldest(ctx); err != nil {
				return err
			}
		}
		f, err := t.js.PublishAsync(t.subject(), p)
		if err != nil {
			return err
		}
		t.pending = append(t.pending, f)
	}
	return nil
}

// awaitOldest waits for the oldest pending publish's PubAck.
func (t *NATSQueueTarget) awaitOldest(ctx context.Context) error {
	f := t.pending[0]
	t.pending = t.pending[1:]
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		t.pubErr = fmt.Errorf("publish: %w", err)
		return t.pubErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush implements QueueTarget.
func (t *NATSQueueTarget) Flush(ctx context.Context) error {
	for len(t.pending) > 0 {
		if err := t.awaitOldest(ctx); err != nil {
			return err
		}
	}
	return t.pubErr
}

// Consume implements QueueTarget.
func (t *NATSQueueTarget) Consume(ctx context.Context, i int, acked func(payload []byte, redelivered bool, ackErr error)) error {
	it := t.iters[i]
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		redelivered := false
		if md, err := msg.Metadata(); err == nil {
			redelivered = md.NumDelivered > 1
		}
		if t.SingleAck {
			err = msg.Ack()
		} else {
			err = msg.DoubleAck(ctx)
		}
		if err != nil && ctx.Err() != nil {
			return nil
		}
		acked(msg.Data(), redelivered, err)
	}
}

// Close implements QueueTarget: it stops the workers, deletes the stream
// and closes every connection.
func (t *NATSQueueTarget) Close() error {
	for _, it := range t.iters {
		it.Stop()
	}
	var err error
	if t.js != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = t.js.DeleteStream(ctx, t.stream())
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			err = nil
		}
	}
	for _, nc := range t.conns {
		nc.Close()
	}
	if t.pub != nil {
		t.pub.Close()
	}
	t.pub, t.js, t.conns, t.iters, t.pending = nil, nil, nil, nil, nil
	return err
}
