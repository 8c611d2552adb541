package broker

import (
	"context"
	"testing"
)

// BenchmarkPublishFanout measures the hot path: one publish of one small
// event to a stream with 4 subscriptions whose consumers keep up.
func BenchmarkPublishFanout(b *testing.B) {
	benchPublishFanout(b, 1)
}

// BenchmarkPublishBatchFanout publishes batches of 100 events (several
// frames each) to 4 subscriptions.
func BenchmarkPublishBatchFanout(b *testing.B) {
	benchPublishFanout(b, 100)
}

// benchPublishFanout publishes batches of n 64-byte events to a stream
// with 4 subscriptions drained as fast as they fill.
func benchPublishFanout(b *testing.B, n int) {
	br := New(Options{QueueCapacity: 1 << 12})
	s, _ := br.DeclareStream("t", "ns", "s")
	done := make(chan struct{})
	for range 4 {
		sub, _ := s.Subscribe(SubscribeOptions{})
		go func() {
			buf := make([]byte, 0, 64<<10)
			for {
				if _, _, err := sub.NextBatch(context.Background(), buf); err != nil {
					done <- struct{}{}
					return
				}
			}
		}()
	}
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = make([]byte, 64)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Publish(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	br.Close()
	for range 4 {
		<-done
	}
}
