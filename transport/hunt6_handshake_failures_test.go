package transport

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testclock"
)

// jsonLogger logs to a buffer as JSON lines.
func jsonLogger() (*slog.Logger, *syncbuf.Buffer) {
	b := &syncbuf.Buffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// failureLines returns the "tls handshake failed" lines logged.
func failureLines(t *testing.T, logs *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == "tls handshake failed" {
			out = append(out, m)
		}
	}
	return out
}

// clientWith is a client configuration trusting dir's development
// certificate and showing certFile (none if empty).
func clientWith(t *testing.T, dir, certFile, keyFile string) *tls.Config {
	t.Helper()
	c, err := ClientTLSConfig(ClientTLSOptions{CAFile: filepath.Join(dir, DevCertFile), CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// watchedFailures is a HandshakeFailures whose wait returns once n more
// connections of its listener have ended and been looked at (failed or
// not), so that what they counted and logged can be checked.
func watchedFailures(t *testing.T) (*HandshakeFailures, func(n int)) {
	t.Helper()
	ended := make(chan struct{}, 256)
	h := &HandshakeFailures{checked: func() { ended <- struct{}{} }}
	return h, func(n int) {
		t.Helper()
		timeout := time.NewTimer(10 * time.Second)
		defer timeout.Stop()
		for i := range n {
			select {
			case <-ended:
			case <-timeout.C:
				t.Fatalf("%d of %d connections seen ending by the handshake failure hook", i, n)
			}
		}
	}
}

// listenLogged is startEcho with opts and log; every accepted connection
// is also sent on the returned channel (dropped when nobody takes it).
func listenLogged(t *testing.T, conf *tls.Config, opts Options, log *slog.Logger) (*Listener, <-chan *quic.Conn) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0", conf, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *quic.Conn, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			select {
			case accepted <- conn:
			default:
			}
			wg.Go(func() {
				for {
					str, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					wg.Go(func() {
						_, _ = io.Copy(str, str)
						_ = str.Close()
					})
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln, accepted
}

// Each TLS handshake the broker refuses is refused by crypto/tls as it
// always was (the client is told the alert), and is counted once under
// its reason and logged once with the client's address, the alert, the
// error and, for a refused certificate, its subject, issuer and expiry. A
// good client, and a client without a certificate where none is required,
// count and log nothing.
func TestHunt6HandshakeFailuresCountedAndLogged(t *testing.T) {
	for _, required := range []bool{true, false} {
		t.Run(map[bool]string{true: "required", false: "optional"}[required], func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t, dir, "clients")
			otherCA := newTestCA(t, dir, "other")
			now := time.Now()
			goodCert, goodKey := ca.issue(t, dir, "alice", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})
			strangerCert, strangerKey := otherCA.issue(t, dir, "mallory", &x509.Certificate{Subject: pkix.Name{CommonName: "mallory"}})
			expiredNotAfter := now.Add(-24 * time.Hour).Truncate(time.Second)
			expiredCert, expiredKey := ca.issueWith(t, dir, "bob", &x509.Certificate{Subject: pkix.Name{CommonName: "bob"}}, now.Add(-48*time.Hour), expiredNotAfter, x509.ExtKeyUsageClientAuth)
			serverOnlyCert, serverOnlyKey := ca.issueWith(t, dir, "carol", &x509.Certificate{Subject: pkix.Name{CommonName: "carol"}}, now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageServerAuth)

			conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: ca.file, RequireClientCert: required}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// A client showing alice's good certificate without its key:
			// its handshake signature does not verify.
			alice, err := tls.LoadX509KeyPair(goodCert, goodKey)
			if err != nil {
				t.Fatal(err)
			}
			if alice.PrivateKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				t.Fatal(err)
			}
			impostor := clientWith(t, dir, "", "")
			impostor.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &alice, nil }

			log, logs := jsonLogger()
			failures, waitEnded := watchedFailures(t)
			ln, _ := listenLogged(t, conf, Options{HandshakeFailures: failures}, log)
			addr := ln.Addr().String()

			type refused struct {
				name            string
				client          *tls.Config
				reason          string
				alert           string // what the client is told
				subject, issuer string // of the certificate shown, when the error names it
				notAfter        time.Time
			}
			cases := []refused{
				{"unknown CA", clientWith(t, dir, strangerCert, strangerKey), HandshakeClientCertUnknownAuthority,
					"tls: unknown certificate authority", "CN=mallory", "CN=other", time.Time{}},
				{"expired", clientWith(t, dir, expiredCert, expiredKey), HandshakeClientCertExpired,
					"tls: expired certificate", "CN=bob", "CN=clients", expiredNotAfter},
				{"no client-auth usage", clientWith(t, dir, serverOnlyCert, serverOnlyKey), HandshakeClientCertInvalid,
					"tls: bad certificate", "CN=carol", "CN=clients", time.Time{}},
				{"handshake signature by another key", impostor, HandshakeOther,
					"tls: error decrypting message", "", "", time.Time{}},
			}
			if required {
				cases = append(cases, refused{"no certificate", clientWith(t, dir, "", ""), HandshakeClientCertMissing,
					"tls: certificate required", "", "", time.Time{}})
			}
			for i, c := range cases {
				before := failures.Counts()
				err := roundTrip(t, addr, c.client)
				if err == nil || !strings.Contains(err.Error(), c.alert) {
					t.Fatalf("%s: err = %v, want a refusal with %q", c.name, err, c.alert)
				}
				waitEnded(1)
				after := failures.Counts()
				if got := after[c.reason] - before[c.reason]; got != 1 || after.Total()-before.Total() != 1 {
					t.Errorf("%s: counts %+v -> %+v, want one more %s", c.name, before, after, c.reason)
				}
				lines := failureLines(t, logs)
				if len(lines) != i+1 {
					t.Fatalf("%s: %d failure lines logged, want %d:\n%s", c.name, len(lines), i+1, logs)
				}
				line := lines[i]
				remote, _ := line["remote"].(string)
				errText, _ := line["err"].(string)
				if line["level"] != "WARN" || line["reason"] != c.reason || line["alert"] != c.alert ||
					!strings.HasPrefix(remote, "127.0.0.1:") || remote == addr ||
					!strings.HasPrefix(errText, "tls: ") || line["not_logged"] != nil {
					t.Errorf("%s: log line %v", c.name, line)
				}
				if c.subject != "" && (line["subject"] != c.subject || line["issuer"] != c.issuer || line["not_after"] == nil) {
					t.Errorf("%s: log line names %v issued by %v, want %s by %s: %v", c.name, line["subject"], line["issuer"], c.subject, c.issuer, line)
				}
				if !c.notAfter.IsZero() && line["not_after"] != c.notAfter.UTC().Format(time.RFC3339) {
					t.Errorf("%s: not_after %v, want %v", c.name, line["not_after"], c.notAfter.UTC())
				}
				if c.subject == "" && line["subject"] != nil {
					t.Errorf("%s: log line names a certificate: %v", c.name, line)
				}
			}

			before, lines := failures.Counts(), len(failureLines(t, logs))
			if err := roundTrip(t, addr, clientWith(t, dir, goodCert, goodKey)); err != nil {
				t.Fatalf("good client: %v", err)
			}
			waitEnded(1)
			if !required {
				if err := roundTrip(t, addr, clientWith(t, dir, "", "")); err != nil {
					t.Fatalf("client without a certificate, none required: %v", err)
				}
				waitEnded(1)
			}
			if after := failures.Counts(); !maps.Equal(after, before) || len(failureLines(t, logs)) != lines {
				t.Errorf("served clients counted or logged as failed: %+v -> %+v\n%s", before, after, logs)
			}
		})
	}
}

// A connection that ends after its handshake, closed by either side,
// counts and logs nothing.
func TestHunt6HandshakeFailuresNormalCloseCountsNothing(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	cert, key := ca.issue(t, dir, "alice", &x509.Certificate{Subject: pkix.Name{CommonName: "alice"}})
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: ca.file, RequireClientCert: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := jsonLogger()
	failures, waitEnded := watchedFailures(t)
	ln, accepted := listenLogged(t, conf, Options{HandshakeFailures: failures}, log)
	addr := ln.Addr().String()

	// The client closes.
	if err := roundTrip(t, addr, clientWith(t, dir, cert, key)); err != nil {
		t.Fatal(err)
	}
	<-accepted
	waitEnded(1)

	// The broker closes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, addr, clientWith(t, dir, cert, key), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case sc := <-accepted:
		_ = sc.CloseWithError(7, "closed by the broker")
	case <-ctx.Done():
		t.Fatal("connection not accepted")
	}
	select {
	case <-conn.Context().Done():
	case <-ctx.Done():
		t.Fatal("client not told of the close")
	}
	waitEnded(1)

	if got := failures.Counts(); got.Total() != 0 {
		t.Errorf("normal closes counted as handshake failures: %+v", got)
	}
	if lines := failureLines(t, logs); len(lines) != 0 {
		t.Errorf("normal closes logged as handshake failures: %v", lines)
	}
}

// A burst of failures is counted in full but logged at most
// handshakeLogBurst times a minute; the first line of the next minute says
// how many were not logged.
func TestHunt6HandshakeFailureLogBounded(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "clients")
	otherCA := newTestCA(t, dir, "other")
	cert, key := otherCA.issue(t, dir, "mallory", &x509.Certificate{Subject: pkix.Name{CommonName: "mallory"}})
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir, ClientCAFile: ca.file, RequireClientCert: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := jsonLogger()
	failures, waitEnded := watchedFailures(t)
	clock := testclock.New()
	failures.now = clock.Now
	addr := func() string {
		ln, _ := listenLogged(t, conf, Options{HandshakeFailures: failures}, log)
		return ln.Addr().String()
	}()

	const n = handshakeLogBurst + 3
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := roundTrip(t, addr, clientWith(t, dir, cert, key)); err == nil {
				t.Error("client of another CA served")
			}
		})
	}
	wg.Wait()
	waitEnded(n)
	if got := failures.Counts(); got[HandshakeClientCertUnknownAuthority] != n || got.Total() != n {
		t.Errorf("counts %+v, want %d %s", got, n, HandshakeClientCertUnknownAuthority)
	}
	if lines := failureLines(t, logs); len(lines) != handshakeLogBurst {
		t.Fatalf("%d failure lines logged, want %d", len(lines), handshakeLogBurst)
	}

	clock.Advance(handshakeLogWindow)
	if err := roundTrip(t, addr, clientWith(t, dir, cert, key)); err == nil {
		t.Error("client of another CA served")
	}
	waitEnded(1)
	lines := failureLines(t, logs)
	if len(lines) != handshakeLogBurst+1 {
		t.Fatalf("%d failure lines logged, want %d", len(lines), handshakeLogBurst+1)
	}
	if last := lines[len(lines)-1]; last["not_logged"] != float64(n-handshakeLogBurst) {
		t.Errorf("first line of the next window: %v, want not_logged=%d", last, n-handshakeLogBurst)
	}
	if got := failures.Counts().Total(); got != n+1 {
		t.Errorf("%d failures counted, want %d", got, n+1)
	}
}

// The log limiter's windows, on a fake clock.
func TestHunt6LogLimiterWindows(t *testing.T) {
	clock := testclock.New()
	var l logLimiter
	step := func(wantOK bool, wantNotLogged uint64) {
		t.Helper()
		ok, n := l.allow(clock.Now())
		if ok != wantOK || n != wantNotLogged {
			t.Fatalf("allow() = %v, %d; want %v, %d", ok, n, wantOK, wantNotLogged)
		}
	}
	for range handshakeLogBurst {
		step(true, 0)
	}
	step(false, 0)
	step(false, 0)
	clock.Advance(handshakeLogWindow - time.Second)
	step(false, 0) // same window
	clock.Advance(time.Second)
	step(true, 3) // a new window says how many were not logged
	for range handshakeLogBurst - 1 {
		step(true, 0)
	}
	step(false, 0)
}
