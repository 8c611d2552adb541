package transport

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/syncbuf"
)

func newTestLogger() (*slog.Logger, *syncbuf.Buffer) {
	b := &syncbuf.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// startEcho listens on 127.0.0.1:0 and echoes every byte on every
// bidirectional stream of every connection until the test ends.
func startEcho(t *testing.T, tlsConf *tls.Config) *Listener {
	t.Helper()
	return startEchoOn(t, "127.0.0.1:0", tlsConf, Options{})
}

// startEchoOn is startEcho on addr with opts.
func startEchoOn(t *testing.T, addr string, tlsConf *tls.Config, opts Options) *Listener {
	t.Helper()
	ln, err := Listen(addr, tlsConf, opts, nil)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					str, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go func() {
						_, _ = io.Copy(str, str)
						_ = str.Close()
					}()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln
}

// roundTrip dials ln with clientConf and exchanges one byte on a stream.
func roundTrip(t *testing.T, addr string, clientConf *tls.Config) error {
	t.Helper()
	return roundTripOpts(t, addr, clientConf, Options{})
}

// roundTripOpts is roundTrip with the client's Options.
func roundTripOpts(t *testing.T, addr string, clientConf *tls.Config, opts Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, addr, clientConf, opts, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	if _, err := str.Write([]byte{42}); err != nil {
		return err
	}
	_ = str.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(str, b[:]); err != nil {
		return err
	}
	if b[0] != 42 {
		t.Fatalf("echo returned %d, want 42", b[0])
	}
	return nil
}

// devListener listens on addr with an ephemeral development certificate
// and opts, closed when the test ends.
func devListener(t *testing.T, addr string, opts Options) *Listener {
	t.Helper()
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(addr, conf, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// insecureClient trusts any broker certificate, for tests about QUIC
// rather than verification.
func insecureClient() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true} //nolint:gosec // test
}
