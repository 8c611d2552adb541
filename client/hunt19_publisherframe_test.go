package client

import (
	"math"
	"testing"

	"github.com/felixmq/felix/wire"
)

// The Publisher cuts batches at the frame limit with publishFrameBytes
// and publishEventBytes: they must be what the encoders lane.send uses
// produce (an acked binary frame, the largest binary one, and JSON
// publish_batch), or a batch could still pass the limit.
func TestPublisherFrameSizeMatchesEncoders(t *testing.T) {
	payloads := [][]byte{{}, {1}, make([]byte, 2), make([]byte, 3), make([]byte, 1000), make([]byte, 65537)}
	for k := range len(payloads) + 1 {
		ps := payloads[:k]
		bin, err := wire.AppendAckedPublishBatchFrame(nil, math.MaxUint64, wire.AckPerBatch, "tenant", "ns", "stream", ps)
		if err != nil {
			t.Fatal(err)
		}
		js, err := wire.AppendMessageFrame(nil, &wire.PublishBatch{TenantID: "tenant", Namespace: "ns", Stream: "stream",
			Payloads: append([][]byte{}, ps...), RequestID: wire.U64(math.MaxUint64), Ack: wire.Ack(wire.AckPerBatch)})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			json  bool
			frame []byte
		}{{false, bin}, {true, js}} {
			est := publishFrameBytes("tenant", "ns", "stream", c.json)
			for _, p := range ps {
				est += publishEventBytes(p, c.json)
			}
			if got := len(c.frame) - wire.HeaderSize; est < got {
				t.Errorf("%d events, json %v: estimated %d bytes, the frame has %d", k, c.json, est, got)
			}
		}
	}
}
