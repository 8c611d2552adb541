package broker

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

// framedBatch encodes payloads as a binary publish and returns them
// decoded from a buffer of its own with headroom, as the server reads one
// (wire.Reader.ReadFrameOwned), and where they lie in it.
func framedBatch(t testing.TB, headroom int, payloads [][]byte, trailing ...byte) ([][]byte, Framed) {
	t.Helper()
	frame, err := wire.AppendPublishBatchFrame(nil, "t", "ns", "s", payloads)
	if err != nil {
		t.Fatal(err)
	}
	frame = append(frame, trailing...) // a decoder ignores bytes after the last payload
	owned := make([]byte, headroom+len(frame)-wire.HeaderSize)
	copy(owned[headroom:], frame[wire.HeaderSize:])
	var batch wire.BinaryPublishBatch
	if err := wire.DecodePublishBatchBody(owned[headroom:], &batch); err != nil {
		t.Fatal(err)
	}
	return batch.Payloads, Framed{Buf: owned, At: headroom + batch.PayloadsAt}
}

func testPayloads(n, size int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = bytes.Repeat([]byte{byte(i + 1)}, size+i%3)
	}
	return ps
}

// TestPublishFramedSameFrames: a framed publish delivers exactly the bytes
// a copying publish delivers, to subscribers with and without offsets, on
// in-memory and log-backed streams, whether the batch becomes its frame in
// place or falls back to copying (too many events, too many bytes, no
// headroom); the replay ring and log keep the right payloads.
func TestPublishFramedSameFrames(t *testing.T) {
	o := Options{MaxEventsPerFrame: 8, MaxBytesPerFrame: 1 << 10}
	cases := []struct {
		name     string
		n, size  int
		headroom int
		trailing []byte
	}{
		{"one frame", 8, 40, 20, nil},
		{"trailing bytes", 8, 40, 20, []byte("junk")},
		{"one event", 1, 10, 20, nil},
		{"big single event", 1, 4 << 10, 20, nil},
		{"too many events", 20, 10, 20, nil},
		{"too many bytes", 8, 300, 20, nil},
		{"no headroom", 4, 10, 0, nil},
	}
	for _, logged := range []bool{false, true} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("logged=%v/%s", logged, c.name), func(t *testing.T) {
				mk := func() *Stream {
					if logged {
						_, s := newLoggedStream(t, o, commitlog.NewMemory(1<<20, 1<<30))
						return s
					}
					b := New(o)
					t.Cleanup(b.Close)
					s, _ := b.DeclareStream("t", "ns", "s")
					return s
				}
				want := testPayloads(c.n, c.size)
				var frames [2][2][]byte // [framed][wantOffsets] all frames delivered
				for framed := range 2 {
					s := mk()
					var subs [2]*Subscription
					for w := range 2 {
						subs[w], _ = s.Subscribe(SubscribeOptions{WantOffsets: w == 1})
					}
					for round := range 3 { // offsets move on between publishes
						if framed == 1 {
							ps, f := framedBatch(t, c.headroom, want, c.trailing...)
							if _, err := s.PublishFramed(context.Background(), ps, f); err != nil {
								t.Fatal(err)
							}
						} else if _, err := s.Publish(context.Background(), want); err != nil {
							t.Fatal(err)
						}
						for w := range 2 {
							for got := 0; got < len(want); {
								b, n, err := subs[w].NextBatch(context.Background(), nil)
								if err != nil {
									t.Fatalf("round %d: %v", round, err)
								}
								frames[framed][w] = append(frames[framed][w], b...)
								got += n
							}
						}
					}
					// The retained events are the payloads, in order.
					late, err := s.Subscribe(SubscribeOptions{Start: wire.StartPosition{Kind: wire.StartEarliest}, WantOffsets: true})
					if err != nil {
						t.Fatal(err)
					}
					var replayed [][]byte
					for len(replayed) < 3*len(want) {
						b, _, err := late.NextBatch(context.Background(), nil)
						if err != nil {
							t.Fatal(err)
						}
						for len(b) > 0 {
							var f wire.Frame
							if f, b, err = wire.DecodeFrame(b, 0); err != nil {
								t.Fatal(err)
							}
							var eb wire.BinaryEventBatch
							if err := wire.DecodeEventBatch(f.Flags, f.Payload, &eb); err != nil {
								t.Fatal(err)
							}
							for _, p := range eb.Payloads {
								replayed = append(replayed, append([]byte(nil), p...))
							}
						}
					}
					for i, p := range replayed {
						if !bytes.Equal(p, want[i%len(want)]) {
							t.Fatalf("framed=%d: retained event %d differs", framed, i)
						}
					}
				}
				for w := range 2 {
					if !bytes.Equal(frames[0][w], frames[1][w]) {
						t.Fatalf("wantOffsets=%v: framed publish delivered other bytes than a copying one", w == 1)
					}
				}
			})
		}
	}
}

// BenchmarkPublishFramed64x256 is the server's publish path at fanout 1
// with 64 events of 256 B: the frame payload read into a buffer (reused
// and copied by Publish, or fresh and kept by PublishFramed), then
// published.
func BenchmarkPublishFramed64x256(b *testing.B) {
	frame, _ := wire.AppendPublishBatchFrame(nil, "t", "ns", "s", testPayloads(64, 256))
	body := frame[wire.HeaderSize:]
	for _, framed := range []bool{false, true} {
		name := "copy"
		if framed {
			name = "framed"
		}
		b.Run(name, func(b *testing.B) {
			br := New(Options{QueueCapacity: 1 << 12, RingCapacity: -1})
			s, _ := br.DeclareStream("t", "ns", "s")
			sub, _ := s.Subscribe(SubscribeOptions{WantOffsets: true})
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 0, 64<<10)
				for {
					if _, _, err := sub.NextBatch(context.Background(), buf); err != nil {
						return
					}
				}
			}()
			var reused []byte
			var batch wire.BinaryPublishBatch
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if framed {
					owned := make([]byte, FramedHeadroom+len(body))
					copy(owned[FramedHeadroom:], body) // the read
					if err := wire.DecodePublishBatchBody(owned[FramedHeadroom:], &batch); err != nil {
						b.Fatal(err)
					}
					if _, err := s.PublishFramed(ctx, batch.Payloads, Framed{Buf: owned, At: FramedHeadroom + batch.PayloadsAt}); err != nil {
						b.Fatal(err)
					}
					continue
				}
				reused = append(reused[:0], body...) // the read
				if err := wire.DecodePublishBatchBody(reused, &batch); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Publish(ctx, batch.Payloads); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			br.Close()
			<-done
		})
	}
}

// TestPublishFramedInPlace: a batch that makes one frame is delivered as
// the caller's buffer itself, the header written into its headroom.
func TestPublishFramedInPlace(t *testing.T) {
	b := New(Options{})
	t.Cleanup(b.Close)
	s, _ := b.DeclareStream("t", "ns", "s")
	sub, _ := s.Subscribe(SubscribeOptions{WantOffsets: true})
	ps, f := framedBatch(t, FramedHeadroom+3, testPayloads(64, 256))
	if _, err := s.PublishFramed(context.Background(), ps, f); err != nil {
		t.Fatal(err)
	}
	got, n, err := sub.NextBatch(context.Background(), nil)
	if err != nil || n != 64 {
		t.Fatalf("NextBatch: %d events, %v", n, err)
	}
	if &got[len(got)-1] != &f.Buf[len(f.Buf)-1] || len(got) != len(f.Buf)-(f.At-FramedHeadroom) {
		t.Fatal("the frame is not the publisher's buffer")
	}
	if want := wire.AppendEventBatchFrame(nil, true, 0, testPayloads(64, 256)); !bytes.Equal(got, want) {
		t.Fatal("frame differs from the encoded one")
	}
}
