// Command orders is `felix demo orders` (package demo) as a program of its
// own: a producer publishes orders to a durable stream, a consumer group of
// workers processes them, and one worker crashes mid-way while holding
// orders it never acknowledged. Those orders are redelivered to the other
// workers; every order is acknowledged exactly once, and a poison order is
// dead-lettered.
//
//	go run ./examples/orders
package main

import "github.com/felixmq/felix/demo"

func main() { demo.Main("orders") }
