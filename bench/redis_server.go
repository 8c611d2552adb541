package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// RedisServerOptions configures StartRedis. The zero value starts a
// redis-server without persistence on a free 127.0.0.1 port.
type RedisServerOptions struct {
	// Port is the port on 127.0.0.1; 0 picks a free one.
	Port int
	// Binary is the redis-server executable. Default: $FELIX_REDIS_SERVER,
	// then .peers/bin/redis-server, then redis-server on $PATH, then
	// /usr/bin/redis-server (Debian's package).
	Binary string
	// StartTimeout bounds the wait for the port to accept. Default 10 s.
	StartTimeout time.Duration
	// AppendOnly persists every write in an append-only file, fsynced
	// once a second (--appendonly yes --appendfsync everysec, Redis's
	// recommended durability), in the server's temporary directory; RDB
	// snapshots stay off. The AOF is rewritten by Redis's defaults (once
	// it doubled and is at least 64 MB).
	AppendOnly bool
}

// StartRedis starts a redis-server owned by the caller on 127.0.0.1 and
// returns its address (host:port) and a stop function (SIGTERM, then
// SIGKILL after 5 s; safe to call more than once). The server is a pure
// in-memory cache, as scripts/peers.sh starts it: no RDB snapshots
// (--save ""), no AOF unless opts.AppendOnly, protected mode on, its
// working directory (where an AOF goes) a temporary one removed by stop. ctx bounds only the start-up. The error
// wraps ErrPeerNotInstalled when there is no redis-server: install one
// with scripts/peers.sh install redis.
func StartRedis(ctx context.Context, opts RedisServerOptions) (addr string, stop func() error, err error) {
	bin, err := findPeerBinary(opts.Binary, "FELIX_REDIS_SERVER", "redis-server", "/usr/bin/redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("bench: start redis: %w", err)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Second
	}
	// Nothing is written there without AppendOnly, but never the
	// caller's working directory either.
	dir, err := os.MkdirTemp("", "felix-bench-redis-")
	if err != nil {
		return "", nil, fmt.Errorf("bench: start redis: %w", err)
	}
	p, port, err := startPeerOnPort(ctx, "redis-server", bin, opts.Port, opts.StartTimeout,
		func(port int) []string { return redisArgs(port, dir, opts.AppendOnly) })
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	stop = func() error {
		defer os.RemoveAll(dir)
		return p.stop()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stop, nil
}

// startPeerOnPort starts a peer on 127.0.0.1:port with the command line
// args(port) (see startPeer). Port 0 picks a free port, and tries up to
// three: a port found free can be taken by someone else before the server
// binds it. It returns the process and the port it listens on.
func startPeerOnPort(ctx context.Context, name, bin string, port int, timeout time.Duration,
	args func(port int) []string) (*peerProcess, int, error) {
	attempts := 1
	if port == 0 {
		attempts = 3
	}
	var err error
	for range attempts {
		p := port
		if p == 0 {
			if p, err = freeLoopbackPort(); err != nil {
				return nil, 0, err
			}
		}
		var proc *peerProcess
		if proc, err = startPeer(ctx, name, bin, args(p), nil, p, timeout); err == nil {
			return proc, p, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, err
}

// redisArgs is redis-server's command line: loopback only, in memory only
// unless appendOnly (then with an AOF in dir fsynced every second),
// logging to stdout (the harness keeps its tail for errors).
func redisArgs(port int, dir string, appendOnly bool) []string {
	aof := []string{"--appendonly", "no"}
	if appendOnly {
		aof = []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	}
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--save", "",
	}
	args = append(args, aof...)
	return append(args,
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--dir", dir,
		"--logfile", "",
	)
}
