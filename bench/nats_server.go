package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// NATSServerOptions configures StartNATS. The zero value starts a plain
// (core, no JetStream) nats-server on a free 127.0.0.1 port.
type NATSServerOptions struct {
	// Port is the client port on 127.0.0.1; 0 picks a free one.
	Port int
	// JetStream enables JetStream (-js) with its store in StoreDir.
	JetStream bool
	// StoreDir is the JetStream store directory. Default: a temporary
	// directory removed by stop.
	StoreDir string
	// Binary is the nats-server executable. Default: $FELIX_NATS_SERVER,
	// then .peers/bin/nats-server (scripts/peers.sh's go-install fallback),
	// then nats-server on $PATH, then /usr/sbin/nats-server (Debian).
	Binary string
	// StartTimeout bounds the wait for the port to accept. Default 10 s.
	StartTimeout time.Duration
	// Env is added to this process's environment for the server (for
	// example GOMAXPROCS=1).
	Env []string
	// TLS, when set, makes the server accept clients only over TLS with
	// this certificate (nats-server --tls; the files live in a temporary
	// directory removed by stop) and the URL's scheme is tls://. Clients
	// verify it with the certificate's own pool (see LoopbackCert).
	TLS *tls.Certificate
}

// StartNATS starts a nats-server owned by the caller on 127.0.0.1 and
// returns its URL and a stop function (SIGTERM, then SIGKILL after 5 s;
// safe to call more than once). ctx bounds only the start-up. The error
// wraps ErrPeerNotInstalled when there is no nats-server: install one with
// scripts/peers.sh install.
func StartNATS(ctx context.Context, opts NATSServerOptions) (url string, stop func() error, err error) {
	bin, err := findPeerBinary(opts.Binary, "FELIX_NATS_SERVER", "nats-server", "/usr/sbin/nats-server")
	if err != nil {
		return "", nil, fmt.Errorf("bench: start nats: %w", err)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	var tempDirs []string // removed by stop, or on a failed start
	removeTemp := func() {
		for _, d := range tempDirs {
			_ = os.RemoveAll(d)
		}
	}
	storeDir := opts.StoreDir
	if opts.JetStream && storeDir == "" {
		if storeDir, err = os.MkdirTemp("", "felix-bench-nats-js-"); err != nil {
			return "", nil, fmt.Errorf("bench: start nats: %w", err)
		}
		tempDirs = append(tempDirs, storeDir)
	}
	scheme, tlsArgs := "nats", []string(nil)
	if opts.TLS != nil {
		dir, err := os.MkdirTemp("", "felix-bench-nats-tls-")
		if err != nil {
			removeTemp()
			return "", nil, fmt.Errorf("bench: start nats: %w", err)
		}
		tempDirs = append(tempDirs, dir)
		if tlsArgs, err = writeNATSCert(dir, opts.TLS); err != nil {
			removeTemp()
			return "", nil, fmt.Errorf("bench: start nats: %w", err)
		}
		scheme = "tls"
	}
	// A free port found by the harness can be taken by someone else before
	// the server binds it: try a few.
	attempts := 1
	if opts.Port == 0 {
		attempts = 3
	}
	for range attempts {
		port := opts.Port
		if port == 0 {
			if port, err = freeLoopbackPort(); err != nil {
				break
			}
		}
		args := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}, tlsArgs...)
		if opts.JetStream {
			args = append(args, "-js", "-sd", storeDir)
		}
		var p *peerProcess
		if p, err = startPeer(ctx, "nats-server", bin, args, opts.Env, port, opts.StartTimeout); err == nil {
			stop := func() error {
				defer removeTemp()
				return p.stop()
			}
			return fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), stop, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	removeTemp()
	return "", nil, fmt.Errorf("bench: %w", err)
}

// writeNATSCert writes cert as PEM files into dir and returns the
// nats-server flags that serve it.
func writeNATSCert(dir string, cert *tls.Certificate) ([]string, error) {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return nil, errors.New("tls certificate without a chain or key")
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("tls key: %w", err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return nil, err
	}
	return []string{"--tls", "--tlscert", certFile, "--tlskey", keyFile}, nil
}
