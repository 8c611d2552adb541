package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/embed"
)

// startBroker runs a broker inside the example's process (package embed)
// and dials it. A real program dials `felix serve` instead:
//
//	c, err := client.Dial(ctx, "127.0.0.1:5000", client.Options{CAFile: "felix-data/dev-cert.pem"})
func startBroker(o embed.Options) (*embed.Broker, *client.Client) {
	b, err := embed.Start(o)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Dial(context.Background(), b.Addr, client.Options{TLS: b.ClientTLS})
	if err != nil {
		log.Fatal(err)
	}
	return b, c
}

// Publish and subscribe: every subscriber of a stream gets every event
// published after it subscribed, in publish order, with its offset.
func Example() {
	b, c := startBroker(embed.Options{Streams: []string{"default/shop/orders"}})
	defer b.Close()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sub, err := c.Subscribe(ctx, "shop", "orders")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	for _, order := range []string{"order-1", "order-2"} {
		// Publish waits for the broker's ack; client.WithAck(wire.AckNone)
		// does not.
		if err := c.Publish(ctx, "shop", "orders", []byte(order)); err != nil {
			log.Fatal(err)
		}
	}
	for range 2 {
		ev, err := sub.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s/%s offset %d: %s\n", ev.Namespace, ev.Stream, ev.Offset, ev.Payload)
	}
	// Output:
	// shop/orders offset 0: order-1
	// shop/orders offset 1: order-2
}

// A consumer group shares a durable stream's records among its
// consumers; a record not acked in time, or nacked, is delivered again.
func ExampleClient_Consumer() {
	b, c := startBroker(embed.Options{DurableStreams: []string{"default/shop/jobs"}})
	defer b.Close()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := c.PublishBatch(ctx, "shop", "jobs", [][]byte{[]byte("resize image"), []byte("send mail")}); err != nil {
		log.Fatal(err)
	}
	co, err := c.Consumer(ctx, "shop", "jobs", "workers")
	if err != nil {
		log.Fatal(err)
	}
	defer co.Close()
	first, err := co.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Nack without delay: the record is delivered again, here after
	// offset 1, which the consumer already holds (its prefetch, 64 by
	// default, took both records at once).
	if err := first.Nack(ctx, 0); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		m, err := co.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("offset %d attempt %d: %s\n", m.Offset, m.Attempt, m.Payload)
		if err := m.Ack(ctx); err != nil { // returns once the broker recorded it
			log.Fatal(err)
		}
	}
	// Output:
	// offset 1 attempt 1: send mail
	// offset 0 attempt 2: resize image
}

// A cache holds values under keys with an optional TTL; every write
// returns the entry's version, which a compare-and-set names.
func ExampleCache() {
	b, c := startBroker(embed.Options{Caches: []string{"default/shop/sessions"}})
	defer b.Close()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	kv := c.Cache("shop", "sessions")
	v1, err := kv.Put(ctx, "user-7", []byte("cart=1"), client.WithTTL(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	// Someone else writes meanwhile.
	if _, err := kv.Put(ctx, "user-7", []byte("cart=2")); err != nil {
		log.Fatal(err)
	}
	// A write conditional on the version read first fails.
	_, err = kv.Put(ctx, "user-7", []byte("cart=1+1"), client.IfVersion(v1))
	fmt.Println("stale compare-and-set:", errors.Is(err, client.ErrConditionFailed))
	val, found, err := kv.Get(ctx, "user-7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("user-7 = %s (found %v)\n", val, found)
	_, found, err = kv.Get(ctx, "user-8")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user-8 found:", found)
	// Output:
	// stale compare-and-set: true
	// user-7 = cart=2 (found true)
	// user-8 found: false
}

// Request/reply: Serve answers a service's requests (responders share
// them round-robin, like a NATS queue group); Request waits for the reply.
func ExampleClient_Request() {
	b, c := startBroker(embed.Options{})
	defer b.Close()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	svc, err := c.Serve(ctx, "shop", "upper", func(ctx context.Context, req []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(req))), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	reply, err := c.Request(ctx, "shop", "upper", []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", reply)
	_, err = c.Request(ctx, "shop", "lower", []byte("hello"))
	fmt.Println("nobody serving lower:", errors.Is(err, client.ErrNoResponders))
	// Output:
	// HELLO
	// nobody serving lower: true
}
