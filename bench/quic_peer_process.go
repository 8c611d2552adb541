package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// QUICPeerCommand is the hidden felix subcommand that runs StartQUICPeer as
// a process of its own and prints the address it listens on as its first
// line of output.
var QUICPeerCommand = []string{"bench", "quic-peer"}

// StartQUICPeerProcess runs `binary bench quic-peer` (a felix binary) on a
// free 127.0.0.1 port, with env added to this process's environment, so
// the raw quic-go peer is a separate process like the brokers it is
// compared with: a loopback round trip between two processes costs more
// than one inside a process, since every packet then wakes the other
// program's threads. stop ends it with SIGTERM (by PID) and waits for it.
func StartQUICPeerProcess(ctx context.Context, binary string, env []string) (addr string, stop func() error, err error) {
	p := &peerProcess{name: "quic peer", out: &tailBuffer{}, exited: make(chan struct{})}
	p.cmd = peerCommand(binary, slices.Concat(QUICPeerCommand, []string{"--listen", "127.0.0.1:0"}), env)
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start quic peer (%s): %w", binary, err)
	}
	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		first <- strings.TrimSpace(line)
		_, _ = io.Copy(p.out, br) // until the process exits
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case addr = <-first:
	case <-ctx.Done():
		_ = p.stop()
		return "", nil, fmt.Errorf("start quic peer: no address after 15s: %w; output:\n%s", context.Cause(ctx), p.out)
	}
	if _, perr := net.ResolveUDPAddr("udp", addr); addr == "" || perr != nil {
		_ = p.stop()
		return "", nil, fmt.Errorf("start quic peer: first line %q is not an address; output:\n%s", addr, p.out)
	}
	return addr, p.stop, nil
}
