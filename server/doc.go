// Package server binds the QUIC transport to the broker engine: it accepts
// connections, runs one handler per client-opened stream, and speaks
// felix-wire v1 exactly as the reference broker does (see docs/protocol.md).
//
// Streams. Every client-opened bidirectional stream is a control stream: it
// starts with auth and then carries publishes (JSON or binary, acked or not),
// cache requests, or one subscribe. Every client-opened unidirectional stream
// is a publish-only stream that never gets a reply. For each subscription the
// server opens a unidirectional event stream, writes event_stream_hello, and
// a writer goroutine drains the subscription's bounded queue into it.
//
// Errors. Bad input never crashes the server or touches other streams: a
// malformed frame resets only its stream, protocol violations get the
// reference's error strings, and a slow subscriber only affects its own
// queue (see broker).
package server
