package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/faultnet"
	"github.com/felixmq/felix/internal/testbroker"
)

// hunt14Broker is a felix serve process restarted on the same address
// and data directory. When the test ends it is stopped (SIGTERM), every
// life's output is checked for a panic and every log directory under the
// data directory must pass `felix log verify`.
type hunt14Broker struct {
	t                  *testing.T
	bin, addr, dataDir string
	args               []string
	p                  *brokerProc // nil while stopped
	logs               []string    // output of the lives that ended
}

func hunt14Start(t *testing.T, args ...string) *hunt14Broker {
	t.Helper()
	bin, dataDir, addr := processTest(t)
	b := &hunt14Broker{t: t, bin: bin, addr: addr, dataDir: dataDir, args: args}
	b.start()
	t.Cleanup(func() {
		if b.p != nil {
			b.stop(syscall.SIGTERM)
		}
		b.check()
	})
	return b
}

func (b *hunt14Broker) start() {
	b.t.Helper()
	b.p = startFelix(b.t, b.bin, b.addr, b.dataDir, b.args...)
}

// stop signals the broker and waits for it to exit; it returns how the
// process ended.
func (b *hunt14Broker) stop(sig syscall.Signal) error {
	b.t.Helper()
	b.p.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-b.p.done:
	case <-time.After(30 * time.Second):
		b.p.cmd.Process.Signal(syscall.SIGKILL)
		err = <-b.p.done
		b.t.Errorf("broker did not exit within 30 s of %v", sig)
	}
	b.logs = append(b.logs, b.p.logs.String())
	b.p = nil
	return err
}

// ready waits until the broker answers a direct dial (not through a
// proxy).
func (b *hunt14Broker) ready() {
	b.t.Helper()
	dialProc(b.t, b.addr, b.dataDir).Close()
}

// check looks for panics in the broker's output and verifies every log.
func (b *hunt14Broker) check() {
	t := b.t
	t.Helper()
	for i, l := range b.logs {
		if strings.Contains(l, "panic") || strings.Contains(l, "fatal error") {
			t.Errorf("broker life %d panicked:\n%s", i, l)
		}
	}
	dirs := map[string]bool{}
	filepath.WalkDir(b.dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	for dir := range dirs {
		if out, err := exec.Command(b.bin, "log", "verify", dir).CombinedOutput(); err != nil {
			t.Errorf("felix log verify %s: %v\n%s", dir, err, out)
		}
	}
	t.Logf("felix log verify passed on %d logs; %d broker lives without a panic", len(dirs), len(b.logs))
}

// proxy puts a faultnet proxy in front of the broker's address (it
// outlives restarts: the broker comes back on the same port).
func (b *hunt14Broker) proxy(f faultnet.Faults) *faultnet.Proxy {
	return faultProxy(b.t, &testbroker.Broker{Addr: b.addr}, f)
}

// dialVia dials the broker through px with opts (the broker's dev
// certificate added); the client is closed when the test ends.
func (b *hunt14Broker) dialVia(px *faultnet.Proxy, opts client.Options) *client.Client {
	b.t.Helper()
	opts.CAFile = filepath.Join(b.dataDir, "dev-cert.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, px.Addr().String(), opts)
	if err != nil {
		b.t.Fatalf("dial through %v: %v", px, err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}
