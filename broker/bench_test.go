package broker

import (
	"context"
	"testing"
)

// BenchmarkPublishFanout measures the hot path: one publish of one small
// event to a stream with 4 subscriptions whose consumers keep up.
func BenchmarkPublishFanout(b *testing.B) {
	br := New(Options{QueueCapacity: 1 << 12})
	s, _ := br.DeclareStream("t", "ns", "s")
	var subs []*Subscription
	for range 4 {
		sub, _ := s.Subscribe(SubscribeOptions{})
		subs = append(subs, sub)
	}
	ctx := context.Background()
	done := make(chan struct{})
	for _, sub := range subs {
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
	payload := [][]byte{make([]byte, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	br.Close()
	for range subs {
		<-done
	}
}

// BenchmarkPublishBatchFanout publishes batches of 100 events (several
// frames each) to 4 subscriptions.
func BenchmarkPublishBatchFanout(b *testing.B) {
	br := New(Options{QueueCapacity: 1 << 12})
	s, _ := br.DeclareStream("t", "ns", "s")
	var subs []*Subscription
	for range 4 {
		sub, _ := s.Subscribe(SubscribeOptions{})
		subs = append(subs, sub)
	}
	done := make(chan struct{})
	for _, sub := range subs {
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
	batch := make([][]byte, 100)
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
	for range subs {
		<-done
	}
}
