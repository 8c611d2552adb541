package transport

import (
	"cmp"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
)

// Defaults applied by Options.QUICConfig and by the socket setup for zero
// fields.
const (
	DefaultMaxIncomingStreams             = 1024
	DefaultMaxIncomingUniStreams          = 1024
	DefaultInitialStreamReceiveWindow     = 1 << 20  // 1 MiB
	DefaultMaxStreamReceiveWindow         = 16 << 20 // 16 MiB
	DefaultInitialConnectionReceiveWindow = 2 << 20  // 2 MiB
	DefaultMaxConnectionReceiveWindow     = 64 << 20 // 64 MiB
	DefaultMaxIdleTimeout                 = 30 * time.Second
	DefaultUDPBuffer                      = 8 << 20 // 8 MiB
	// DefaultClientKeepAlivePeriod is the keep-alive the Felix client SDK
	// uses when Options.KeepAlivePeriod is zero (brokers send none).
	DefaultClientKeepAlivePeriod = 10 * time.Second
)

// Options are the QUIC and socket knobs shared by brokers and clients. The
// zero value is valid: every zero field takes the documented default.
// Every configuration built from them also offers RESET_STREAM_AT
// (reliable stream resets; see QUICConfig), which has no knob.
type Options struct {
	// MaxIncomingStreams bounds the concurrent bidirectional streams the peer
	// may open. Default 1024 (as the reference). Negative allows none.
	MaxIncomingStreams int64
	// MaxIncomingUniStreams bounds the concurrent unidirectional streams the
	// peer may open. Default 1024. Negative allows none.
	MaxIncomingUniStreams int64

	// InitialStreamReceiveWindow is the starting per-stream flow-control
	// window in bytes; quic-go auto-tunes it up to MaxStreamReceiveWindow.
	// Default 1 MiB. Every window is capped at MaxWindow, the largest
	// value QUIC can carry.
	InitialStreamReceiveWindow uint64
	// MaxStreamReceiveWindow caps the per-stream window in bytes. Default
	// 16 MiB (the reference's stream window). Raised to the initial window
	// if smaller.
	MaxStreamReceiveWindow uint64
	// InitialConnectionReceiveWindow is the starting connection-wide window
	// in bytes. Default 2 MiB.
	InitialConnectionReceiveWindow uint64
	// MaxConnectionReceiveWindow caps the connection-wide window in bytes.
	// Default 64 MiB (the reference's connection window). Raised to the
	// initial window if smaller.
	MaxConnectionReceiveWindow uint64

	// MaxIdleTimeout closes a connection after this long without any
	// incoming packet. Default 30s (quinn's default, kept by the reference);
	// negative also means the default.
	MaxIdleTimeout time.Duration
	// KeepAlivePeriod sends a keep-alive packet this often. Default 0: none,
	// as the reference broker. The Felix client SDK uses
	// DefaultClientKeepAlivePeriod (10s) when this is zero, so an idle
	// client connection (e.g. a quiet subscription) survives MaxIdleTimeout.
	// Negative means none, as zero does for a broker.
	KeepAlivePeriod time.Duration

	// StatelessResetKey lets a broker that restarted (same key, same
	// address) tell clients at once that their old connections are gone,
	// with a QUIC stateless reset, instead of leaving them to time out
	// after MaxIdleTimeout. Keep it secret and stable across restarts
	// (e.g. derived from a file in the data dir). Default nil: no resets.
	// Used by Listen only.
	StatelessResetKey *quic.StatelessResetKey
	// HandshakeFailures, when not nil, counts the TLS handshakes the
	// broker refused (a client certificate refused, a malformed handshake
	// message, ...), by reason: felix_tls_handshake_failures_total. Each
	// is also logged at Warn ("tls handshake failed", at most 10 lines a
	// minute), whether or not this is set. Default nil. Used by Listen
	// only.
	HandshakeFailures *HandshakeFailures

	// UDPReceiveBuffer is the target kernel receive buffer of the UDP socket
	// in bytes. Default 8 MiB. Negative leaves the OS default alone.
	UDPReceiveBuffer int
	// UDPSendBuffer is the target kernel send buffer in bytes. Default
	// 8 MiB. Negative leaves the OS default alone.
	UDPSendBuffer int
}

// MaxWindow is the largest flow-control window QUIC can announce (2^62-1
// bytes, the largest variable-length integer); larger window options are
// lowered to it. quic-go panics while encoding a larger initial window.
const MaxWindow = quicvarint.Max

// withDefaults returns o with every zero field set to its default and
// every out-of-range field brought into range (see the field docs).
func (o Options) withDefaults() Options {
	o.MaxIncomingStreams = cmp.Or(o.MaxIncomingStreams, DefaultMaxIncomingStreams)
	o.MaxIncomingUniStreams = cmp.Or(o.MaxIncomingUniStreams, DefaultMaxIncomingUniStreams)
	o.InitialStreamReceiveWindow = min(cmp.Or(o.InitialStreamReceiveWindow, DefaultInitialStreamReceiveWindow), MaxWindow)
	o.MaxStreamReceiveWindow = min(max(cmp.Or(o.MaxStreamReceiveWindow, DefaultMaxStreamReceiveWindow),
		o.InitialStreamReceiveWindow), MaxWindow)
	o.InitialConnectionReceiveWindow = min(cmp.Or(o.InitialConnectionReceiveWindow, DefaultInitialConnectionReceiveWindow), MaxWindow)
	o.MaxConnectionReceiveWindow = min(max(cmp.Or(o.MaxConnectionReceiveWindow, DefaultMaxConnectionReceiveWindow),
		o.InitialConnectionReceiveWindow), MaxWindow)
	// quic-go encodes a negative idle timeout as a huge unsigned value and
	// panics, and takes a negative keep-alive period as "every 1.5 PTO".
	if o.MaxIdleTimeout <= 0 {
		o.MaxIdleTimeout = DefaultMaxIdleTimeout
	}
	o.KeepAlivePeriod = max(o.KeepAlivePeriod, 0)
	o.UDPReceiveBuffer = cmp.Or(o.UDPReceiveBuffer, DefaultUDPBuffer)
	o.UDPSendBuffer = cmp.Or(o.UDPSendBuffer, DefaultUDPBuffer)
	return o
}

// QUICConfig returns a quic-go configuration with the defaults applied.
// Each call returns a new value the caller may modify.
//
// It offers RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset,
// EnableStreamResetPartialDelivery), brokers and clients alike. Where both
// peers offer it, a stream reset after quic.Stream.SetReliableBoundary
// still delivers the data written before the boundary, then the reset
// code; a broker uses it to deliver its replies to the requests it served
// before it resets a stream whose token expired (docs/protocol.md). A
// reset without a boundary discards unsent data as before, and a peer that
// does not offer the extension gets plain resets.
func (o Options) QUICConfig() *quic.Config {
	o = o.withDefaults()
	return &quic.Config{
		MaxIncomingStreams:             o.MaxIncomingStreams,
		MaxIncomingUniStreams:          o.MaxIncomingUniStreams,
		InitialStreamReceiveWindow:     o.InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:         o.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow: o.InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:     o.MaxConnectionReceiveWindow,
		MaxIdleTimeout:                 o.MaxIdleTimeout,
		KeepAlivePeriod:                o.KeepAlivePeriod,

		EnableStreamResetPartialDelivery: true, // RESET_STREAM_AT, see above
	}
}
