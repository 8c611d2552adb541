package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/faultnet"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/transport"
)

// badLink is the lossy link of the fault tests: 5% loss, 0-5 ms of jitter
// (which reorders), 1% duplicates, both ways.
var badLink = faultnet.Faults{Drop: 0.05, Jitter: 5 * time.Millisecond, Duplicate: 0.01}

// faultProxy starts a faultnet proxy in front of tb. The seed comes from
// FELIX_FAULT_SEED when set (to replay a failure), else at random; it is
// logged, and logged again with the proxy's counters when the test fails.
// Start the proxy before dialing through it, so that the clients close
// (test cleanups run last first) before the proxy does.
func faultProxy(t *testing.T, tb *testbroker.Broker, f faultnet.Faults) *faultnet.Proxy {
	t.Helper()
	seed := rand.Uint64() | 1
	if s := os.Getenv("FELIX_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FELIX_FAULT_SEED: %v", err)
		}
		seed = v
	}
	px, err := faultnet.New(tb.Addr, faultnet.Options{Seed: seed, Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("faultnet seed %d (replay: FELIX_FAULT_SEED=%d)", px.Seed(), px.Seed())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with FELIX_FAULT_SEED=%d; %v", px.Seed(), px)
		}
		px.Close()
	})
	return px
}

// dialVia dials tb through the proxy.
func dialVia(t *testing.T, tb *testbroker.Broker, px *faultnet.Proxy, opts client.Options) *client.Client {
	t.Helper()
	opts.TLS = tb.ClientTLS
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, px.Addr().String(), opts)
	if err != nil {
		t.Fatalf("dial through %v: %v", px, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// faultPayload is publisher pub's event seq: 9 bytes of header, then a
// pattern of a size that varies with seq (up to ~3 KB, so some events span
// several QUIC packets) that checkPayload verifies byte for byte.
func faultPayload(pub byte, seq uint64) []byte {
	size := 9 + int(seq*397%3000)
	b := make([]byte, size)
	b[0] = pub
	binary.BigEndian.PutUint64(b[1:], seq)
	for i := 9; i < size; i++ {
		b[i] = byte(uint64(i)*31 + seq + uint64(pub))
	}
	return b
}

// checkPayload returns the publisher and sequence of a faultPayload, or an
// error if the bytes are not exactly what faultPayload made.
func checkPayload(b []byte) (pub byte, seq uint64, err error) {
	if len(b) < 9 {
		return 0, 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	pub, seq = b[0], binary.BigEndian.Uint64(b[1:])
	if want := faultPayload(pub, seq); string(want) != string(b) {
		return pub, seq, fmt.Errorf("payload of publisher %d seq %d corrupted (%d bytes, want %d)", pub, seq, len(b), len(want))
	}
	return pub, seq, nil
}

// within fails the test if ctx ended: every wait in the fault tests is
// bounded by the test's deadline.
func within(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if ctx.Err() != nil {
		t.Fatalf("%s: %v", what, ctx.Err())
	}
}

// shortIdle are client options that notice a dead link within a second
// (QUIC idle timeout 1s on every connection, keep-alives every 250ms) and
// redial quickly, with the given RequestTimeout (0: the default, 30s).
func shortIdle(requestTimeout time.Duration) client.Options {
	return client.Options{
		Transport:        transport.Options{MaxIdleTimeout: time.Second, KeepAlivePeriod: 250 * time.Millisecond},
		EventIdleTimeout: time.Second,
		Reconnect:        client.ReconnectPolicy{MinBackoff: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond},
		RequestTimeout:   requestTimeout,
	}
}
