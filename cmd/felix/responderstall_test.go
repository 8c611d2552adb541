package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testwait"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
	"github.com/felixmq/felix/wire"
)

// stalledResponder makes a raw stream a responder of default/svc on the
// broker at addr and then reads nothing more from it, as a responder
// whose process hangs: the broker's write of a request larger than the
// stream's receive window (1 MiB, grown only as the client reads) blocks
// on flow control.
func stalledResponder(t *testing.T, addr, ca string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Liveness)
	defer cancel()
	tlsConf, err := transport.ClientTLSConfig(transport.ClientTLSOptions{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := transport.Dial(ctx, addr, tlsConf, transport.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	s, err := cc.Conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	s.SetReadDeadline(time.Now().Add(testwait.Liveness))
	r := wire.NewReader(s, 0)
	for _, step := range []struct {
		send wire.Message
		want wire.MsgType
	}{
		{&wire.Auth{TenantID: "default", Token: "dev", ClientFlags: wire.U16(wire.KnownFlags | wire.CapRequest)}, (&wire.AuthOK{}).Type()},
		{&wire.Serve{TenantID: "default", Namespace: "default", Service: "svc"}, (&wire.Serving{}).Type()},
	} {
		b, err := wire.AppendMessageFrame(nil, step.send)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(b); err != nil {
			t.Fatalf("write %T: %v", step.send, err)
		}
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("reply to %T: %v", step.send, err)
		}
		if reply, err := wire.DecodeMessage(f.Payload); err != nil || reply.Type() != step.want {
			t.Fatalf("reply to %T: %#v %v, want %s", step.send, reply, err, step.want)
		}
	}
}

// overStreamWindow is a request payload larger than a stream's receive
// window (transport.DefaultInitialStreamReceiveWindow).
var overStreamWindow = []byte(strings.Repeat("x", 2<<20))

// requestStalled sends a request over the stream window to default/svc,
// served only by a stalled responder, and returns its error.
func requestStalled(t *testing.T, addr, ca string, timeout time.Duration) error {
	t.Helper()
	stalledResponder(t, addr, ca)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+testwait.Liveness)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rctx, rcancel := context.WithTimeout(ctx, timeout)
	defer rcancel()
	_, err = c.Request(rctx, "default", "svc", overStreamWindow)
	return err
}

// stallBoundServed starts serve with args (and the environment) and
// returns the ResponderStallTimeout it gives the server.
func stallBoundServed(t *testing.T, args ...string) time.Duration {
	t.Helper()
	var got time.Duration
	serverOptionsHook = func(o server.Options) { got = o.ResponderStallTimeout }
	defer func() { serverOptionsHook = nil }()
	_, _, _, stop := startServeDir(t, t.TempDir(), args...)
	stop()
	return got
}

// --responder-stall-timeout, its variable and its config key reach the
// server's option; its 0 is the server's no bound (negative), not the
// server's 0 (its default). Before, serve had no such setting: the bound
// was always the server's default (5 s).
func TestServeResponderStallTimeoutReachesServer(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  string
		want time.Duration
	}{
		{name: "default", want: server.DefaultResponderStallTimeout},
		{name: "flag", args: []string{"--responder-stall-timeout", "100ms"}, want: 100 * time.Millisecond},
		{name: "flag 0", args: []string{"--responder-stall-timeout", "0"}, want: -1},
		{name: "variable", env: "750ms", want: 750 * time.Millisecond},
		{name: "config key", args: []string{"--config", writeConfig(t, "responder_stall_timeout: 2s\n")}, want: 2 * time.Second},
		{name: "flag over variable", args: []string{"--responder-stall-timeout", "3s"}, env: "0", want: 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("FELIX_RESPONDER_STALL_TIMEOUT", c.env)
			}
			if got := stallBoundServed(t, c.args...); got != c.want {
				t.Errorf("server.Options.ResponderStallTimeout = %v, want %v", got, c.want)
			}
		})
	}
}

// A responder that stops reading its stream is taken out of service
// under the bound of --responder-stall-timeout: its request fails with
// responder_gone, not at its own timeout (a minute).
func TestServeResponderStallTimeoutTakesStalledResponderOut(t *testing.T) {
	addr, _, ca := startServe(t, "--responder-stall-timeout", "100ms")
	err := requestStalled(t, addr, ca, time.Minute)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != wire.RequestCodeResponderGone {
		t.Fatalf("request to a stalled responder under --responder-stall-timeout 100ms: %v, want responder_gone", err)
	}
}

// Negative and too short values are refused naming the setting the way
// it was given (flag, variable, config key); 0 and the floor are
// accepted, and the variable and key set it as for every serve flag.
func TestServeResponderStallTimeoutBounds(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{name: "negative", args: []string{"--responder-stall-timeout", "-1s"}, want: "--responder-stall-timeout: must not be negative, got -1s (0 = no bound)"},
		{name: "below the floor", args: []string{"--responder-stall-timeout", "1ms"}, want: "--responder-stall-timeout: must be 0 (no bound) or at least 10ms, got 1ms"},
		{name: "variable", env: "-5s", want: "FELIX_RESPONDER_STALL_TIMEOUT: must not be negative, got -5s (0 = no bound)"},
		{name: "config key", args: []string{"--config", writeConfig(t, "responder_stall_timeout: 1ns\n")}, want: "responder_stall_timeout (config "},
		{name: "not a duration", args: []string{"--responder-stall-timeout", "soon"}, want: "--responder-stall-timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("FELIX_RESPONDER_STALL_TIMEOUT", c.env)
			}
			err := printConfigErr(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
	for _, ok := range []string{"0", "10ms", "30s"} {
		if err := printConfigErr(t, "--responder-stall-timeout", ok); err != nil {
			t.Errorf("--responder-stall-timeout %s refused: %v", ok, err)
		}
	}
}
