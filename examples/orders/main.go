// Command orders is the queue demo: a producer publishes orders to a
// durable stream, a consumer group of workers processes them, and one
// worker crashes mid-way while holding orders it never acknowledged. Those
// orders are redelivered to the other workers; every order is acknowledged
// exactly once, and a poison order is dead-lettered. It is
// `felix demo orders` (package demo) as a program of its own.
//
//	go run ./examples/orders
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/felixmq/felix/demo"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo.Run(ctx, "orders", os.Stdout, demo.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
