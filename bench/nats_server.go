package bench

import (
	"context"
	"fmt"
	"os"
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
	storeDir, removeStore := opts.StoreDir, func() {}
	if opts.JetStream && storeDir == "" {
		if storeDir, err = os.MkdirTemp("", "felix-bench-nats-js-"); err != nil {
			return "", nil, fmt.Errorf("bench: start nats: %w", err)
		}
		removeStore = func() { _ = os.RemoveAll(storeDir) }
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
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}
		if opts.JetStream {
			args = append(args, "-js", "-sd", storeDir)
		}
		var p *peerProcess
		if p, err = startPeer(ctx, "nats-server", bin, args, opts.Env, port, opts.StartTimeout); err == nil {
			stop := func() error {
				defer removeStore()
				return p.stop()
			}
			return fmt.Sprintf("nats://127.0.0.1:%d", port), stop, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	removeStore()
	return "", nil, fmt.Errorf("bench: %w", err)
}
