// Package transport is the QUIC layer shared by the Felix broker and its
// clients: TLS configuration (development certificate or files), the UDP
// socket with enlarged kernel buffers, quic-go configuration, a listener and
// a dialer.
//
// # TLS
//
// Felix speaks TLS 1.3 only. A broker either loads a certificate and key from
// files (TLSOptions.CertFile, TLSOptions.KeyFile) or uses a development
// certificate: ECDSA P-256, self-signed, valid one year, for the names
// localhost, 127.0.0.1 and ::1. With TLSOptions.DataDir set the development
// certificate is written to DataDir/dev-cert.pem and DataDir/dev-key.pem on
// first start and reused afterwards (clients can trust that PEM file as a CA);
// without it the certificate lives in memory only and changes at every start.
// A stored certificate that is unreadable, does not match its key, has
// expired or is not valid yet is replaced (logged at Warn with the reason);
// a stored key readable by other users is made 0600 (logged). Starts at the
// same time on one data dir, in one process or several, hold a lock on the
// directory while they look, so they end with one certificate, the one in
// the file (the QUIC reset key of LoadOrCreateResetKey likewise).
//
// Clients name the server "localhost" by default (ClientTLSOptions.ServerName),
// which matches the development certificate.
//
// Certificate files are served through a CertReloader: at most every
// TLSOptions.CertCheckInterval (10 s by default) a handshake reads the
// files and loads them again when their content (its SHA-256) changed; TLSFiles.Reload (from NewServerTLS) forces it, e.g. on SIGHUP.
// A reload that fails (half-replaced files, a key not matching the
// certificate, a certificate that has already expired) keeps the previous
// certificate and logs an error saying why. An expired certificate is
// still served at start, logged as an error, so a late renewal is picked
// up without a restart. The client CA file (TLSOptions.ClientCAFile) is
// watched the same way, and each handshake verifies client certificates
// against the CAs it holds. A CA bundle loads whole or not at all: a
// certificate block that does not parse or is cut off is an error.
//
// # Mutual TLS
//
// TLSOptions.ClientCAFile names the CAs that sign client certificates; with
// it a client certificate, when shown, must chain to one of them, and with
// TLSOptions.RequireClientCert a client without a valid certificate is
// refused during the handshake. Clients show one with
// ClientTLSOptions.CertFile and KeyFile. ClientCertIdentity names a client by
// its certificate (subject CN, else the first SAN). The default (no files)
// asks for no client certificate. crypto/tls alone verifies client
// certificates; Listen only observes the handshakes it refuses (a
// quic.Transport.ConnContext hook reads the TLS error a connection closed
// with), logging them rate-limited and counting them by reason in
// Options.HandshakeFailures.
//
// # ALPN
//
// The reference Felix (Rust, quinn/rustls) configures no ALPN on either side.
// Go's crypto/tls is stricter for QUIC (RFC 9001 §8.1): a server that lists
// NextProtos rejects a client that offers none, and a client that offers a
// protocol rejects a server that selects none. To interoperate with both
// kinds of client, the server configuration built here lists no NextProtos
// but installs a tls.Config.GetConfigForClient hook that echoes the first
// protocol the client offered, if any (see EchoALPN). Clients built with
// ClientTLSConfig offer no protocol, exactly like the reference client.
//
// # UDP buffers
//
// Listen and NewClientTransport open the UDP socket themselves and try to
// raise its receive and send buffers to Options.UDPReceiveBuffer and
// Options.UDPSendBuffer (8 MiB by default): on Linux first with
// SO_RCVBUFFORCE/SO_SNDBUFFORCE (allowed for root or CAP_NET_ADMIN), otherwise
// with SO_RCVBUF/SO_SNDBUF, halving the request until the kernel accepts it.
// The effective sizes are read back and logged once per socket: at Info when
// the target was met, at Warn naming the sysctl to raise
// (net.core.rmem_max and/or net.core.wmem_max, only those that capped a
// buffer) when the OS capped them. When our
// warning has been logged, quic-go's own buffer warning is silenced (by
// setting QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING unless the environment
// already sets it) so the condition is reported once.
//
// # Options
//
// Out-of-range Options are brought into range rather than handed to
// quic-go, which panics on some: windows above MaxWindow (2^62-1) are
// lowered to it, a negative MaxIdleTimeout means the default and a
// negative KeepAlivePeriod none.
//
// # Lifetimes
//
// Listener.Close and ClientTransport.Close close the quic-go transport and the
// UDP socket. quic-go then drops the connections still open without telling
// the peer, so close connections first (quic.Conn.CloseWithError) for a
// graceful shutdown. The listener does that itself for the connections it
// holds that no Accept took (Listener.CloseWithError sets the close's code
// and reason), and refuses handshakes still under way.
package transport
