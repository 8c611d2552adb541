// Package broker is the Felix engine, free of any transport: the registry of
// tenants, namespaces and streams, per-stream ordering, fanout to bounded
// per-subscriber queues, and the in-memory replay ring.
//
// Data path. Stream.Publish runs in the publisher's goroutine: under the
// stream lock it assigns offsets, encodes the payloads ONCE into shared
// felix-wire event-batch frames (split at Options.MaxEventsPerFrame and
// MaxBytesPerFrame), records them in the replay ring, and hands the same
// immutable bytes to every subscription's bounded queue. There is no
// goroutine hop and no per-subscriber copy. A subscription's consumer (the
// server's writer) drains its queue with NextBatch, which coalesces queued
// frames into one write bounded by bytes, events and an optional delay.
//
// Slow subscribers. Each queue holds at most Options.QueueCapacity frames.
// Its policy decides what happens when it is full: DropNew discards the new
// frame, DropOld discards the oldest queued frame, Block makes the publisher
// wait (throttling the whole stream, by design) until the queue has room,
// the subscription closes, the publish's context ends, or the stream is
// deleted or the broker closes (then the frame counts as dropped, and the
// publish fails with that reason, but for the close of a durable stream:
// its events are in the log, so it succeeds). Every dropped event is
// counted per subscription (Subscription.Stats). Under the drop policies a
// publisher never waits for a subscriber. Closing a subscription never
// waits for a publisher, even one blocked on another subscriber; a new
// subscription does (it joins live delivery at a definite offset, under the
// stream lock the waiting publish holds).
//
// Durable streams. A subscription that starts behind the live position
// replays the log (without the stream lock) and joins live delivery under
// the lock once it has read everything fanned out. If retention trims the
// records it has yet to replay, it goes on from the oldest retained one and
// counts the skipped events as dropped. If the stream ends (deleted, or
// the broker closes) before it has caught up, it ends at once: its log is
// closed, and the events it had yet to replay count as dropped too.
package broker
