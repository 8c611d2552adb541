package transport

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
)

// quicGoBufferWarningEnv silences quic-go's own UDP buffer warning.
const quicGoBufferWarningEnv = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

// minBufferRequest is the smallest size tried while halving a request.
const minBufferRequest = 64 << 10

// bufferResult is the outcome of sizing one socket buffer.
type bufferResult struct {
	target    int
	effective int  // as read back from the kernel; -1 when unknown
	forced    bool // set with SO_*BUFFORCE
}

// listenUDP opens a UDP socket on addr and sizes its buffers per opts
// (defaults applied), logging the result once. role is "broker" or
// "client", for the log line.
func listenUDP(addr string, opts Options, log *slog.Logger, role string) (*net.UDPConn, error) {
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: resolve %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		// A *net.OpError already reads "listen udp ADDR: bind: ...".
		return nil, fmt.Errorf("transport: %w", err)
	}
	sizeBuffers(conn, opts.withDefaults(), log, role)
	return conn, nil
}

// sizeBuffers raises the socket buffers toward their targets and logs one
// line with the effective sizes.
func sizeBuffers(conn *net.UDPConn, opts Options, log *slog.Logger, role string) {
	raw, err := conn.SyscallConn()
	if err != nil {
		log.Warn("udp socket buffers not adjusted", "role", role, "err", err)
		return
	}
	var rcv, snd *bufferResult
	if opts.UDPReceiveBuffer > 0 {
		r := setBuffer(raw, conn.SetReadBuffer, opts.UDPReceiveBuffer, false)
		rcv = &r
	}
	if opts.UDPSendBuffer > 0 {
		r := setBuffer(raw, conn.SetWriteBuffer, opts.UDPSendBuffer, true)
		snd = &r
	}
	if rcv == nil && snd == nil {
		return
	}
	attrs := []any{"role", role, "addr", conn.LocalAddr().String()}
	short := false
	if rcv != nil {
		attrs = append(attrs, "recv_bytes", rcv.effective, "recv_target", rcv.target)
		short = short || rcv.short()
	}
	if snd != nil {
		attrs = append(attrs, "send_bytes", snd.effective, "send_target", snd.target)
		short = short || snd.short()
	}
	if !short {
		log.Info("udp socket buffers", attrs...)
		return
	}
	hint := "raise the OS limits"
	if isLinux {
		// Name only the limits that capped a buffer we sized.
		hint = "sysctl -w"
		if rcv != nil && rcv.short() {
			hint += fmt.Sprintf(" net.core.rmem_max=%d", rcv.target)
		}
		if snd != nil && snd.short() {
			hint += fmt.Sprintf(" net.core.wmem_max=%d", snd.target)
		}
		hint += " (or run as root)"
	}
	log.Warn("udp socket buffers capped by the OS; throughput may suffer under load",
		append(attrs, "fix", hint)...)
	// We reported it; keep quic-go from logging the same condition again.
	if _, set := os.LookupEnv(quicGoBufferWarningEnv); !set {
		_ = os.Setenv(quicGoBufferWarningEnv, "true")
	}
}

func (r bufferResult) short() bool { return r.effective >= 0 && r.effective < r.target }

// setBuffer sizes one socket buffer: the privileged force option first
// (Linux), else the normal option, halving the request until the kernel
// accepts it; the effective size is read back.
func setBuffer(raw syscall.RawConn, set func(int) error, target int, send bool) bufferResult {
	res := bufferResult{target: target, effective: -1}
	if forceBuffer(raw, target, send) == nil {
		// Forced, the kernel ignores the sysctl limits: what it granted
		// (at most INT_MAX/2 bytes) is as much as the normal option could
		// give, which would lower it to net.core.[rw]mem_max.
		res.forced = true
		res.effective = readBuffer(raw, send)
		return res
	}
	for size := target; size >= minBufferRequest; size /= 2 {
		if set(size) == nil {
			break
		}
	}
	res.effective = readBuffer(raw, send)
	return res
}
