// Package client is the Go SDK for Felix. It speaks felix-wire v1 (see
// docs/protocol.md) over QUIC and drives a broker the way the reference
// Rust client does, so it works with both brokers.
//
//	c, err := client.Dial(ctx, "127.0.0.1:5000", client.Options{CAFile: "felix-data/dev-cert.pem"})
//	defer c.Close()
//	sub, err := c.Subscribe(ctx, "default", "demo")
//	err = c.Publish(ctx, "default", "demo", []byte("hello")) // waits for the ack
//	ev, err := sub.Next(ctx)
//
// The names are namespace and stream; the tenant is Options.TenantID
// (default "default"). default/demo is the stream a development broker
// (`felix serve` with no flags) declares; any other stream must be declared
// on the broker first, or Subscribe and Publish fail with "stream not
// found". CAFile is the development certificate that `felix serve` keeps
// in its data directory (default felix-data).
//
// # Connections
//
// A Client owns one UDP socket and three pools of QUIC connections to one
// broker. Publish connections (Options.PublishConns, default 2) each carry
// Options.PublishStreamsPerConn (default 2) long-lived bidirectional
// streams, authenticated once (auth with client_flags = wire.KnownFlags
// plus the extension capabilities wire.ExtensionCaps). Event connections
// (Options.EventConns, default 2, each dialed at its first use) carry
// subscriptions, queue consumers and services, assigned round-robin; one
// whose stream or connection is lost comes back on the same connection. Cache connections (Options.CacheConns, default 2,
// dialed on first use) carry cache requests.
//
// # Publishing
//
// Publish and PublishBatch pick the publish stream by hashing
// (namespace, stream), so one goroutine's publishes to a stream stay in
// order. By default they wait for the broker's ack: an acked binary batch
// (0x0009, answered by a binary 0x0010 ack) when the broker advertised
// BINARY_PUBLISH_ACKED in auth_ok, otherwise a JSON publish_batch with a
// request_id (answered by publish_ok / publish_error). Request ids count
// from 1 per stream, and any number of acked publishes are in flight on a
// stream at once; a reader goroutine per stream hands each ack to its
// caller. WithAck(wire.AckNone) sends a fire-and-forget binary batch
// (0x0001) and returns once it is written. Publisher adds client-side
// batching with a bounded queue.
//
// # Subscribing
//
// Subscribe opens a new bidirectional stream on an event connection, sends
// auth then subscribe, finishes its side and reads one reply (subscribed,
// subscribe_cursor_error or error). The broker opens a unidirectional event
// stream starting with event_stream_hello{subscription_id}; a router
// goroutine per event connection pairs it with the subscription. Event
// batches (shared 0x0004 or per-subscription 0x0002, with offsets when
// 0x0020 is set) become Events in a bounded buffer read by Next or C; when
// the buffer is full the reader stops, and QUIC flow control pushes back on
// the broker, so nothing is dropped on the client. SubscribeFunc skips the
// buffer: the reader calls a handler with each event, which is cheapest
// when a process holds many busy subscriptions.
//
// # Caches
//
// Client.Cache returns a handle on one cache: Get, GetItem, MGet, Put,
// Delete and TTL. Put returns the entry's new version; PutOptions add a TTL
// (WithTTL), put-if-absent (IfAbsent) and compare-and-set (IfVersion). A
// condition that does not hold fails with a *CacheError matching
// ErrConditionFailed.
//
//	kv := c.Cache("default", "demo")
//	v, err := kv.Put(ctx, "k", []byte("v"), client.WithTTL(time.Minute))
//	_, err = kv.Put(ctx, "k", []byte("v2"), client.IfVersion(v))
//	val, found, err := kv.Get(ctx, "k")
//
// # Queues
//
// Consume joins a consumer group on a durable stream and calls a handler
// for each message until its context ends: a nil return acks the message,
// an error nacks it. Consumer gives the same deliveries to read with Next
// or C, to Ack or Nack yourself. Ack waits until the broker has recorded
// the ack; AckAsync only hands it to the connection (as NATS's Ack and
// AMQP's basic.ack), several times faster in a loop, at the price of not
// knowing whether it arrived (if not, the record is redelivered).
// QueueStats reads a group's counters; DeleteQueueGroup removes a group.
//
//	err = c.Consume(ctx, "default", "jobs", "workers", func(ctx context.Context, m *client.Message) error {
//		return process(m.Payload) // m.Offset, m.Attempt
//	})
//
// # Failures
//
// Errors are typed: *ServerError (the broker's message), *CursorError,
// *CacheError, *ConnectionError (matches ErrDisconnected), *ProtocolError,
// *TokenSourceError, ErrClosed.
// When a connection is lost, requests in flight on it fail with a
// *ConnectionError; later calls redial with exponential backoff
// (Options.Reconnect). Subscriptions resubscribe by themselves, from the
// next expected offset while the broker retains it (a Felix broker sends
// offsets on every stream; the reference only on durable ones), else from
// the oldest retained offset, counting the gap in Subscription.Missed;
// without offsets, from the tail (at-most-once: events published during
// the gap are lost). Close tears everything down and returns after every
// goroutine of the client has exited.
//
// # Connection events
//
// Options.OnDisconnect and OnReconnect tell when a pooled connection was
// lost and when its redial succeeded, as nats.go's DisconnectErrHandler
// and ReconnectHandler do; a ConnEvent names the connection (Kind
// "publish", "event" or "cache", and its Index in the pool), the broker
// address and, on a disconnect, the error that ended it:
//
//	opts.OnDisconnect = func(e client.ConnEvent) { log.Printf("lost %s %d: %v", e.Kind, e.Index, e.Err) }
//	opts.OnReconnect = func(e client.ConnEvent) { log.Printf("reconnected %s %d", e.Kind, e.Index) }
//
// Connections are redialed on demand, so a loss is reported when the
// client starts to redial it: at once for an event connection carrying
// subscriptions, consumers or services (they redial the connection they
// were on), at the next call for publish and cache connections. The
// client's own Close, and an unused connection the broker closed, are not
// reported. The callbacks run one at a time on a goroutine of the client,
// never under its locks; at most ConnEventBuffer (64) events wait for a
// slow callback, further ones are dropped and counted
// (Client.DroppedConnEvents), in pairs: a connection's reconnect is
// delivered exactly when its disconnect was. Close waits for a callback
// under way, so a callback must not call Close itself.
package client
