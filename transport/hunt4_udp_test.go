package transport

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// When only the send buffer is sized and the OS caps it, the warning's fix
// names only net.core.wmem_max: it must never suggest a sysctl value of 0
// (which would shrink every socket's receive buffer) for the direction
// left alone. A 1 GiB send target is capped even for root (the kernel
// stores at most INT_MAX, which is then read back halved).
func TestHunt4UDPBufferHintNamesOnlyCappedBuffers(t *testing.T) {
	log, logs := newTestLogger()
	conn, err := listenUDP("127.0.0.1:0", Options{UDPReceiveBuffer: -1, UDPSendBuffer: 1 << 30}, log, "broker")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := logs.String()
	if !strings.Contains(out, "capped by the OS") {
		t.Skipf("1 GiB send buffer granted here; nothing to check:\n%s", out)
	}
	if strings.Contains(out, "recv_") || strings.Contains(out, "rmem_max") {
		t.Errorf("receive buffer left alone but reported or named in the fix:\n%s", out)
	}
	if strings.Contains(out, "=0 ") || strings.Contains(out, "=0\"") {
		t.Errorf("fix suggests a zero limit:\n%s", out)
	}
	if !strings.Contains(out, "net.core.wmem_max=1073741824") {
		t.Errorf("fix does not name the send limit to raise:\n%s", out)
	}
	// With the privilege to force buffers, the forced size (about 1 GiB)
	// is kept, not lowered again to net.core.wmem_max by the unprivileged
	// fallback.
	if privilegedBuffers(t) {
		m := regexp.MustCompile(`send_bytes=(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no send_bytes in the log:\n%s", out)
		}
		if got, _ := strconv.Atoi(m[1]); got < 1<<29 {
			t.Errorf("send buffer %d bytes after a forced ~1 GiB: the fallback shrank it", got)
		}
	}
}

// privilegedBuffers reports whether this process may force socket buffers
// past the sysctl limits (root or CAP_NET_ADMIN on Linux).
func privilegedBuffers(t *testing.T) bool {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return forceBuffer(raw, 1<<20, true) == nil
}
