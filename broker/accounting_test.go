package broker

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/wire"
)

type flakySink struct {
	mu     sync.Mutex
	frames [][]byte
	r      *rand.Rand
}

func (f *flakySink) TryWrite(b []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.r.IntN(3) == 0 {
		return false
	}
	f.frames = append(f.frames, b)
	return true
}

// Under every policy, with concurrent publishers of multi-event batches
// split into several frames, with and without direct (sink) writes, on
// in-memory and log-backed streams: each publisher's events arrive in
// order with no duplicate, offsets only move forward, every write keeps
// WriteMaxEvents, and delivered + dropped == published exactly.
func TestAccountingAndOrderUnderConcurrentPublishers(t *testing.T) {
	for _, logged := range []bool{false, true} {
		for _, p := range []QueuePolicy{DropNew, DropOld, Block} {
			for _, withSink := range []bool{false, true} {
				var s *Stream
				var b *Broker
				o := Options{QueueCapacity: 8, MaxEventsPerFrame: 3, WriteMaxEvents: 7}
				if logged {
					b, s = newLoggedStream(t, o, commitlog.NewMemory(1<<20, 1<<30))
				} else {
					b, s = newTestStream(t, o)
				}
				pp := p
				sub, _ := s.Subscribe(SubscribeOptions{Policy: &pp, WantOffsets: logged})
				sink := &flakySink{r: rand.New(rand.NewPCG(1, 2))}
				if withSink {
					sub.SetSink(sink)
				}
				const pubs, each = 4, 200
				var wg sync.WaitGroup
				var published uint64
				var pmu sync.Mutex
				for w := range pubs {
					wg.Go(func() {
						r := rand.New(rand.NewPCG(uint64(w), 9))
						seq := uint64(0)
						for range each {
							n := 1 + r.IntN(7)
							var batch [][]byte
							for range n {
								batch = append(batch, binary.BigEndian.AppendUint64(nil, uint64(w)<<32|seq))
								seq++
							}
							if _, err := s.Publish(context.Background(), batch); err != nil {
								t.Error(err)
							}
							pmu.Lock()
							published += uint64(n)
							pmu.Unlock()
						}
					})
				}
				var got []byte
				readDone := make(chan struct{})
				go func() {
					defer close(readDone)
					for {
						bts, n, err := sub.NextBatch(context.Background(), nil)
						if err != nil {
							return
						}
						if n > 7 {
							t.Errorf("a write of %d events, bound 7", n)
						}
						if withSink {
							sink.mu.Lock()
							sink.frames = append(sink.frames, append([]byte(nil), bts...))
							sink.mu.Unlock()
						} else {
							got = append(got, bts...)
						}
						time.Sleep(50 * time.Microsecond)
					}
				}()
				wg.Wait()
				b.DeleteStream("t", "ns", "s")
				<-readDone
				if withSink {
					for _, f := range sink.frames {
						got = append(got, f...)
					}
				}
				var eb wire.BinaryEventBatch
				last := map[uint64]int64{}
				n := uint64(0)
				prevOff := int64(-1)
				for len(got) > 0 {
					f, rest, err := wire.DecodeFrame(got, 0)
					if err != nil {
						t.Fatal(err)
					}
					wire.DecodeEventBatch(f.Flags, f.Payload, &eb)
					if eb.HasOffsets {
						if int64(eb.BaseOffset) <= prevOff {
							t.Fatalf("offset went back %d after %d", eb.BaseOffset, prevOff)
						}
						prevOff = int64(eb.BaseOffset) + int64(len(eb.Payloads)) - 1
					}
					for _, pl := range eb.Payloads {
						v := binary.BigEndian.Uint64(pl)
						w, q := v>>32, int64(v&0xffffffff)
						if l, ok := last[w]; ok && q <= l {
							t.Fatalf("publisher %d: %d after %d", w, q, l)
						}
						last[w] = q
						n++
					}
					got = rest
				}
				st := sub.Stats()
				if n+st.Dropped != published || st.Delivered != n {
					t.Errorf("logged=%v %v sink=%v: published %d, received %d, dropped %d, delivered %d", logged, p, withSink, published, n, st.Dropped, st.Delivered)
				}
			}
		}
	}
}
