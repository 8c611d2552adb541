package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrPeerNotInstalled is returned (wrapped) when a peer's server binary
// cannot be found.
var ErrPeerNotInstalled = errors.New("peer not installed: run scripts/peers.sh install")

// findPeerBinary returns the first executable among: the explicit path,
// $envVar, .peers/bin/name under the repository root, name on PATH, and the
// extra fixed paths (Debian puts some servers in /usr/sbin).
func findPeerBinary(explicit, envVar, name string, extra ...string) (string, error) {
	var tried []string
	try := func(p string) bool {
		tried = append(tried, p)
		st, err := os.Stat(p)
		return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	if explicit != "" {
		if try(explicit) {
			return explicit, nil
		}
		return "", fmt.Errorf("%s binary %s is not an executable file", name, explicit)
	}
	if p := os.Getenv(envVar); p != "" {
		if try(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%s is not an executable file", envVar, p)
	}
	if root, ok := repoRoot(); ok {
		if p := filepath.Join(root, ".peers", "bin", name); try(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	tried = append(tried, name+" on $PATH")
	for _, p := range extra {
		if try(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (looked at %v): %w", name, tried, ErrPeerNotInstalled)
}

// repoRoot walks up from the working directory to the directory holding
// scripts/peers.sh.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "peers.sh")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// portAccepts reports whether 127.0.0.1:port accepts a TCP connection.
func portAccepts(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// peerProcess is a peer server started by the harness and owned by it: it is
// stopped through the *exec.Cmd it was started with, never by name.
type peerProcess struct {
	name   string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when Wait returns
	err    error         // Wait's result, valid once exited is closed
	once   sync.Once
}

// peerCommand is exec.Command(bin, args...) run with env added to this
// process's environment (nothing added when env is empty).
func peerCommand(bin string, args, env []string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	return cmd
}

// startPeer runs bin with args (and env added to the environment) and
// waits, at most timeout (and never past ctx), until 127.0.0.1:port accepts
// connections.
func startPeer(ctx context.Context, name, bin string, args, env []string, port int, timeout time.Duration) (*peerProcess, error) {
	if portAccepts(port) {
		return nil, fmt.Errorf("start %s: 127.0.0.1:%d is already in use", name, port)
	}
	p := &peerProcess{name: name, out: &tailBuffer{}, exited: make(chan struct{})}
	p.cmd = peerCommand(bin, args, env)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !portAccepts(port) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("start %s: exited during start-up (%v); output:\n%s", name, p.err, p.out)
		case <-ctx.Done():
			_ = p.stop()
			return nil, fmt.Errorf("start %s: 127.0.0.1:%d not accepting after %s: %w; output:\n%s",
				name, port, timeout, context.Cause(ctx), p.out)
		case <-tick.C:
		}
	}
	return p, nil
}

// stop sends SIGTERM, waits up to 5 s, then kills. Safe to call again.
func (p *peerProcess) stop() error {
	var err error
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			err = fmt.Errorf("stop %s: killed after SIGTERM was ignored for 5s", p.name)
		}
	})
	return err
}

// tailBuffer keeps the last max bytes written to it (4 KiB when max is 0),
// for a peer's output in error messages; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	limit := t.max
	if limit <= 0 {
		limit = 4096
	}
	if over := len(t.b) - limit; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
