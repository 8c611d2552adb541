package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/transport"
)

// devCertPair makes a self-signed certificate pair (the development
// certificate generator, in its own directory) and returns its files.
func devCertPair(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := transport.ServerTLSConfig(transport.TLSOptions{DataDir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, transport.DevCertFile), filepath.Join(dir, "dev-key.pem")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP makes a running broker load its certificate files again at once
// (without it, a replaced pair is only noticed at the next periodic check),
// and the process keeps running.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals a broker process")
	}
	oldCert, oldKey := devCertPair(t)
	newCert, newKey := devCertPair(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	copyFile(t, oldCert, certFile)
	copyFile(t, oldKey, keyFile)

	bin := buildFelix(t)
	addr := freeUDP(t)
	p := startFelix(t, bin, addr, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile, "--log-level", "info")
	dialWith := func(ca string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, addr, client.Options{CAFile: ca, Reconnect: client.ReconnectPolicy{Disabled: true}})
		if err == nil {
			c.Close()
		}
		return err
	}
	for deadline := time.Now().Add(20 * time.Second); dialWith(oldCert) != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("broker did not come up:\n%s", p.logs.String())
		}
	}

	copyFile(t, newCert, certFile)
	copyFile(t, newKey, keyFile)
	// Well within the 10 s periodic check: the old certificate is still served.
	if err := dialWith(newCert); err == nil {
		t.Fatal("the new certificate was served before SIGHUP")
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(testwait.Liveness); ; time.Sleep(20 * time.Millisecond) {
		if dialWith(newCert) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate is not served after SIGHUP:\n%s", p.logs.String())
		}
	}
	select {
	case err := <-p.done:
		t.Fatalf("the broker exited on SIGHUP: %v\n%s", err, p.logs.String())
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if logs := p.logs.String(); !strings.Contains(logs, "SIGHUP: tls files reloaded") {
		t.Fatalf("no reload line in the log:\n%s", logs)
	}
}
