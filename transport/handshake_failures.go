package transport

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// The reasons a TLS handshake failed, as counted by HandshakeFailures (the
// reason label of felix_tls_handshake_failures_total). The set is fixed.
const (
	// HandshakeClientCertMissing: the client showed no certificate, and
	// TLSOptions.RequireClientCert is set.
	HandshakeClientCertMissing = "client_cert_missing"
	// HandshakeClientCertUnknownAuthority: the client's certificate does
	// not chain to a CA of TLSOptions.ClientCAFile (as the file was at the
	// moment of the handshake).
	HandshakeClientCertUnknownAuthority = "client_cert_unknown_authority"
	// HandshakeClientCertExpired: the client's certificate, or one of its
	// chain, has expired or is not valid yet.
	HandshakeClientCertExpired = "client_cert_expired"
	// HandshakeClientCertInvalid: the client's certificate failed
	// verification for another reason (no client-authentication extended
	// key usage, a name constraint, ...).
	HandshakeClientCertInvalid = "client_cert_invalid"
	// HandshakeOther: any other failure the broker detected (a malformed
	// or unexpected handshake message, a handshake signature that does not
	// match the client's certificate, no common parameters, ...).
	HandshakeOther = "other"
)

// handshakeReasons are the reasons, indexed as HandshakeFailures counts
// them.
var handshakeReasons = [...]string{HandshakeClientCertMissing, HandshakeClientCertUnknownAuthority,
	HandshakeClientCertExpired, HandshakeClientCertInvalid, HandshakeOther}

const (
	reasonMissing = iota
	reasonUnknownAuthority
	reasonExpired
	reasonInvalid
	reasonOther
)

// HandshakeFailureReasons returns the reasons HandshakeFailures counts, in
// a fixed order.
func HandshakeFailureReasons() []string { return handshakeReasons[:] }

// At most handshakeLogBurst failures are logged per handshakeLogWindow;
// the others are counted only, and the next line logged says how many
// were not (not_logged).
const (
	handshakeLogBurst  = 10
	handshakeLogWindow = time.Minute
)

// HandshakeFailures counts the TLS handshakes a broker's listener refused,
// by reason (Options.HandshakeFailures), and rate-limits their log lines.
// It only observes: crypto/tls makes every decision (client certificates
// included, per TLSOptions), and a failure is seen once quic-go closes the
// connection with a TLS error of our side. Failures the client detects
// (e.g. it does not trust the broker's certificate), handshakes that
// time out or are abandoned, and TLS errors on a connection the listener
// had accepted (its handshake completed) are not counted.
//
// The zero value is ready; it is safe for concurrent use. A nil
// *HandshakeFailures reads as zero.
type HandshakeFailures struct {
	n     [len(handshakeReasons)]atomic.Uint64
	limit logLimiter

	// Test hooks, nil in production: now is the log limiter's clock
	// (default time.Now); checked runs after each connection that ended
	// was looked at, failed or not.
	now     func() time.Time
	checked func()
}

// HandshakeFailureCounts is a snapshot of HandshakeFailures: the count
// of every reason (HandshakeFailureReasons), zeros included.
type HandshakeFailureCounts map[string]uint64

// Total is the sum over the reasons.
func (c HandshakeFailureCounts) Total() uint64 {
	var t uint64
	for _, n := range c {
		t += n
	}
	return t
}

// Counts reads the counters.
func (h *HandshakeFailures) Counts() HandshakeFailureCounts {
	c := make(HandshakeFailureCounts, len(handshakeReasons))
	for i, reason := range handshakeReasons {
		var n uint64
		if h != nil {
			n = h.n[i].Load()
		}
		c[reason] = n
	}
	return c
}

// connContext is the quic.Transport.ConnContext of a listener: quic-go
// cancels the context of a connection, with the close error as its cause,
// when the connection ends, including when its handshake fails. Each
// connection gets a context.AfterFunc, which starts no goroutine until
// then, and a connState in its context, which Listener.Accept marks.
func (h *HandshakeFailures) connContext(log *slog.Logger) func(context.Context, *quic.ClientInfo) (context.Context, error) {
	return func(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
		remote := info.RemoteAddr
		st := new(connState)
		ctx = context.WithValue(ctx, connStateKey{}, st)
		context.AfterFunc(ctx, func() { h.ended(context.Cause(ctx), st.accepted.Load(), remote, log) })
		return ctx, nil
	}
}

// connState is kept in the context of each connection of a listener.
// accepted: Listener.Accept returned the connection, so its handshake
// completed. A local CRYPTO_ERROR after that (the peer sent a TLS message
// crypto/tls refuses in a 1-RTT CRYPTO frame, say) is no refused handshake.
type connState struct{ accepted atomic.Bool }

type connStateKey struct{}

// markAccepted records in the context of a connection of the listener that
// it was accepted (see connState); a no-op for any other context.
func markAccepted(ctx context.Context) {
	if st, ok := ctx.Value(connStateKey{}).(*connState); ok {
		st.accepted.Store(true)
	}
}

// ended looks at why a connection ended and counts and logs a handshake
// failure of our side. accepted: the connection's handshake had completed
// (see connState), so nothing is counted.
func (h *HandshakeFailures) ended(cause error, accepted bool, remote net.Addr, log *slog.Logger) {
	if h.checked != nil {
		defer h.checked()
	}
	if accepted {
		return
	}
	f, ok := classifyHandshakeFailure(cause)
	if !ok {
		return
	}
	h.n[f.reason].Add(1)
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	ok, notLogged := h.limit.allow(now())
	if !ok {
		return
	}
	attrs := make([]any, 0, 16)
	if remote != nil {
		attrs = append(attrs, "remote", remote.String())
	}
	attrs = append(attrs, "reason", handshakeReasons[f.reason], "alert", f.alert.Error())
	if f.leaf != nil {
		attrs = append(attrs, "subject", f.leaf.Subject.String(), "issuer", f.leaf.Issuer.String(),
			"not_after", f.leaf.NotAfter.UTC())
	}
	attrs = append(attrs, "err", f.err.Error())
	if notLogged > 0 {
		attrs = append(attrs, "not_logged", notLogged)
	}
	log.Warn("tls handshake failed", attrs...)
}

// handshakeFailure is a classified handshake failure.
type handshakeFailure struct {
	reason int            // index in handshakeReasons
	alert  tls.AlertError // the alert sent to the client
	err    error          // crypto/tls's error
	leaf   *x509.Certificate
}

// alertCertificateRequired is the alert crypto/tls sends (TLS 1.3) to a
// client that shows no certificate when one is required.
const alertCertificateRequired tls.AlertError = 116

// classifyHandshakeFailure says whether a connection's close error is a
// TLS handshake failure detected on our side and, if so, why. quic-go
// closes such a connection with a local CRYPTO_ERROR (0x100 + the TLS
// alert) that wraps crypto/tls's error, so the x509 error of a refused
// certificate can be found in it.
func classifyHandshakeFailure(cause error) (handshakeFailure, bool) {
	te, ok := errors.AsType[*quic.TransportError](cause)
	if !ok || te.Remote || !te.ErrorCode.IsCryptoError() {
		return handshakeFailure{}, false
	}
	f := handshakeFailure{reason: reasonOther, alert: tls.AlertError(te.ErrorCode - 0x100), err: te}
	for _, e := range te.Unwrap() {
		if e != nil && !errors.Is(e, net.ErrClosed) {
			f.err = e
		}
	}
	cve, isCVE := errors.AsType[*tls.CertificateVerificationError](te)
	if isCVE && len(cve.UnverifiedCertificates) > 0 {
		f.leaf = cve.UnverifiedCertificates[0]
	}
	if unknown, ok := errors.AsType[x509.UnknownAuthorityError](te); ok {
		f.reason, f.leaf = reasonUnknownAuthority, cmp.Or(f.leaf, unknown.Cert)
	} else if invalid, ok := errors.AsType[x509.CertificateInvalidError](te); ok {
		f.reason, f.leaf = reasonInvalid, cmp.Or(f.leaf, invalid.Cert)
		if invalid.Reason == x509.Expired {
			f.reason = reasonExpired
		}
	} else if isCVE {
		f.reason = reasonInvalid
	} else if f.alert == alertCertificateRequired {
		f.reason = reasonMissing
	}
	return f, true
}

// logLimiter lets at most handshakeLogBurst lines through per
// handshakeLogWindow (fixed windows that start at the first line after the
// previous one ended) and counts the others. The zero value is ready.
type logLimiter struct {
	mu        sync.Mutex
	start     time.Time
	n         int    // lines let through in the window
	notLogged uint64 // lines held back since the last one let through
}

// allow says whether to log a line at now and, if so, how many were held
// back since the previous line logged.
func (l *logLimiter) allow(now time.Time) (ok bool, notLogged uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() || now.Sub(l.start) >= handshakeLogWindow {
		l.start, l.n = now, 0
	}
	if l.n >= handshakeLogBurst {
		l.notLogged++
		return false, 0
	}
	l.n++
	notLogged, l.notLogged = l.notLogged, 0
	return true, notLogged
}
