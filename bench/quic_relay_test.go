package bench

import (
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func TestQUICRelayFanout(t *testing.T) {
	ctx, addr := startTestQUICPeer(t, 60*time.Second)

	// Every run uses the same peer, after the previous run's subscribers
	// went away.
	for _, shared := range []bool{false, true} {
		for _, cfg := range []PubSubConfig{
			{Fanout: 3, Warmup: 50, Total: 500, Rate: 5000},          // paced, single messages
			{Fanout: 2, Total: 2000, Batch: 16, PayloadSize: 1024},   // as fast as possible, batched
			{Fanout: 1, Total: 20, Batch: 4, PayloadSize: 200 << 10}, // messages larger than one coalesced write
		} {
			tgt := &QUICRelayTarget{Addr: addr, SharedConn: shared}
			res, err := RunPubSub(ctx, tgt, cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := QUICRelayName
			if shared {
				want += "-shared"
			}
			if res.Target != want {
				t.Errorf("target %q, want %q", res.Target, want)
			}
			if res.Lost != 0 || res.Duplicates != 0 || res.OutOfOrder != 0 || res.Invalid != 0 {
				t.Errorf("shared=%v %+v: lost %d dups %d ooo %d invalid %d", shared, cfg, res.Lost, res.Duplicates, res.OutOfOrder, res.Invalid)
			}
			if res.Delivered != int64((cfg.Warmup+cfg.Total)*cfg.Fanout) || res.Latency.Count != int64(cfg.Total*cfg.Fanout) {
				t.Errorf("shared=%v %+v: delivered %d, latency samples %d", shared, cfg, res.Delivered, res.Latency.Count)
			}
		}
	}
}

func TestQUICRelayRefusesUnknownRole(t *testing.T) {
	ctx, addr := startTestQUICPeer(t, 30*time.Second)
	conn, err := quic.DialAddr(ctx, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{quicRelayALPN}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write([]byte{'X'}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(str); err == nil {
		t.Fatal("unknown role: stream ended cleanly, want a reset")
	}
	// The connection and the relay still serve a real subscriber.
	res, err := RunPubSub(ctx, &QUICRelayTarget{Addr: addr}, PubSubConfig{Fanout: 2, Total: 100})
	if err != nil || res.Lost != 0 {
		t.Fatalf("after a bad stream: %v, lost %d", err, res.Lost)
	}
}

// A peer process gets the environment it is started with on top of ours
// (--server-gomaxprocs passes GOMAXPROCS this way). The stand-in peer is a
// script that prints an "address" made of the variable it sees.
func TestPeerProcessEnv(t *testing.T) {
	script := filepath.Join(t.TempDir(), "peer.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 127.0.0.1:${FELIX_TEST_PEER_ENV:-0}\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		env  []string
		want string
	}{{nil, "127.0.0.1:0"}, {[]string{"FELIX_TEST_PEER_ENV=3"}, "127.0.0.1:3"}} {
		addr, stop, err := StartQUICPeerProcess(ctx, script, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if addr != tc.want {
			t.Errorf("env %q: the child saw %q, want %q", tc.env, addr, tc.want)
		}
	}
	if v, ok := os.LookupEnv("FELIX_TEST_PEER_ENV"); ok {
		t.Fatalf("our own environment changed: %q", v)
	}
}
