package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// RedisPubSubTarget is Redis PUBLISH/SUBSCRIBE as a PubSubTarget through
// go-redis v9: one publishing client, and one subscriber connection per
// subscriber (a Redis connection that subscribes to a channel gets each
// message once, so subscribers cannot share one). A batch is pipelined
// PUBLISH commands whose replies Publish waits for, so Flush has nothing
// left to do. Redis drops a subscriber whose output buffer overflows
// (client-output-buffer-limit pubsub); the harness counts what it did not
// deliver as Lost. The zero value uses DefaultRedisAddr and a fresh
// channel per Setup.
type RedisPubSubTarget struct {
	// Addr is the server's host:port. Default DefaultRedisAddr.
	Addr string
	// Channel to use; default a random "felixbench.*" channel per Setup.
	Channel string

	pub     *redis.Client
	subs    []*redis.PubSub
	channel string
	wg      sync.WaitGroup
}

// Name implements PubSubTarget: "redis".
func (t *RedisPubSubTarget) Name() string { return "redis" }

// Setup implements PubSubTarget. It returns once the server has confirmed
// every subscription.
func (t *RedisPubSubTarget) Setup(ctx context.Context, subscribers int, deliver func(sub int, payload []byte)) (err error) {
	if t.pub != nil {
		return errors.New("redis pub/sub target is already set up")
	}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	t.channel = t.Channel
	if t.channel == "" {
		t.channel = "felixbench." + rand.Text()
	}
	addr := t.Addr
	if addr == "" {
		addr = DefaultRedisAddr
	}
	t.pub = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
	if err := t.pub.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w (is it running? scripts/peers.sh start redis)", addr, err)
	}
	for i := range subscribers {
		ps := t.pub.Subscribe(ctx, t.channel) // a dedicated connection
		t.subs = append(t.subs, ps)
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			return fmt.Errorf("subscribe %d to %s: %w", i, t.channel, err)
		}
		t.wg.Go(func() {
			for {
				m, err := ps.ReceiveMessage(context.Background())
				if err != nil {
					return // closed
				}
				// deliver does not keep the payload: no copy needed.
				deliver(i, unsafe.Slice(unsafe.StringData(m.Payload), len(m.Payload)))
			}
		})
	}
	return nil
}

// Publish implements PubSubTarget: one pipeline of PUBLISH commands,
// written and answered before it returns.
func (t *RedisPubSubTarget) Publish(ctx context.Context, payloads [][]byte) error {
	pipe := t.pub.Pipeline()
	for _, p := range payloads {
		pipe.Publish(ctx, t.channel, p)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Flush implements PubSubTarget: Publish already waited for the replies.
func (t *RedisPubSubTarget) Flush(context.Context) error { return nil }

// Close implements PubSubTarget.
func (t *RedisPubSubTarget) Close() error {
	var errs []error
	for _, ps := range t.subs {
		errs = append(errs, ps.Close())
	}
	t.wg.Wait()
	if t.pub != nil {
		errs = append(errs, t.pub.Close())
	}
	t.pub, t.subs = nil, nil
	return errors.Join(errs...)
}
