package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/syncbuf"
)

// asFelixEnv makes the test binary run main() instead of the tests, so
// process tests can run `felix serve` as a real process without a go build.
const asFelixEnv = "FELIXCMD_TEST_AS_FELIX"

func TestMain(m *testing.M) {
	if os.Getenv(asFelixEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// felixProc is `felix serve` running as a child process.
type felixProc struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error // the Wait result, once done is closed
}

// startFelixProc runs the test binary as `felix serve` with args, waits
// until it listens and returns it with its QUIC and metrics addresses. The
// process is killed when the test ends if still running.
func startFelixProc(t *testing.T, args ...string) (p *felixProc, quicAddr, metricsAddr string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs broker processes")
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quicAddr = udp.LocalAddr().String()
	udp.Close()
	p = &felixProc{out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"serve", "--listen", quicAddr, "--metrics-addr", "127.0.0.1:0",
		"--controlplane-addr", "off", "--log-level", "info"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	runSelf(t, p.cmd, &p.err, p.done)
	metricsRe := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), `msg="felix listening"`) {
		select {
		case <-p.done:
			t.Fatalf("felix exited at start: %v\n%s", p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("felix did not start:\n%s", p.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := metricsRe.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", p.out)
	}
	return p, quicAddr, m[1]
}

// waitExit waits for the process to end (at most within bound, a
// generous limit against a hang) and returns its exit code.
func (p *felixProc) waitExit(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		t.Fatalf("felix did not exit within %v:\n%s", bound, p.out)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// metricValue returns the value of the first sample of /metrics whose line
// starts with prefix (name and labels), or -1.
func metricValue(t *testing.T, metricsAddr, prefix string) float64 {
	t.Helper()
	_, body := get(t, "http://"+metricsAddr+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(prefix):]), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// A drain held up by a subscriber that does not read (its events cannot
// leave the broker) answers /ready 503 draining and /live 200; a second
// SIGTERM then ends the process at once with status 1 instead of waiting
// out the whole --shutdown-timeout (it was ignored: the broker kept
// draining for the full budget whatever the operator did).
func TestSecondSignalEndsTheDrain(t *testing.T) {
	p, maddr, _ := startHeldDrain(t)
	if code, body := get(t, "http://"+maddr+"/ready"); code != http.StatusServiceUnavailable || body != "draining" {
		t.Errorf("/ready during the drain: %d %q, want 503 draining", code, body)
	}
	if code, _ := get(t, "http://"+maddr+"/live"); code != http.StatusOK {
		t.Errorf("/live during the drain: %d, want 200", code)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.waitExit(t, 30*time.Second); code != 1 {
		t.Errorf("exit code %d after a second signal, want 1\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "second signal: exiting without finishing the drain") {
		t.Errorf("no log line for the second signal:\n%s", p.out)
	}
}

// startHeldDrain runs `felix serve` (with a 1h --shutdown-timeout), fills
// the queue of a subscriber that does not read, so that its events cannot
// leave the broker, and sends SIGTERM: it returns once the process is
// draining, held up by that subscriber until its client c is closed.
func startHeldDrain(t *testing.T) (p *felixProc, metricsAddr string, c *client.Client) {
	t.Helper()
	dir := t.TempDir()
	p, addr, maddr := startFelixProc(t, "--data-dir", dir, "--no-dev-defaults", "--stream", "default/default/s",
		"--shutdown-timeout", "1h")
	eventually(t, "/ready 200", func() bool { code, _ := get(t, "http://"+maddr+"/ready"); return code == 200 })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: filepath.Join(dir, "dev-cert.pem"), SubscriptionBuffer: 1,
		Reconnect: client.ReconnectPolicy{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Subscribe(ctx, "default", "s"); err != nil { // never read
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 64<<10)
	queued := `felix_sub_queue_len{namespace="default",stream="s",tenant="default"} `
	eventually(t, "a subscriber writer stuck on flow control", func() bool {
		if err := c.Publish(ctx, "default", "s", payload); err != nil {
			t.Fatal(err)
		}
		return metricValue(t, maddr, queued) > 0
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, "the drain", func() bool { return strings.Contains(p.out.String(), `msg="felix draining"`) })
	return p, maddr, c
}

// runSelf starts cmd, this test binary acting as felix, records its exit
// in *waitErr and closes done when it ends, and kills it at the test's end
// if it still runs.
func runSelf(t *testing.T, cmd *exec.Cmd, waitErr *error, done chan struct{}) {
	t.Helper()
	cmd.Env = append(os.Environ(), asFelixEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { *waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
}
