// Command notifications is `felix demo notifications` as a program:
// alerts fan out to several subscribers of two tenants, each receiving
// every alert in order; a stalled subscriber loses alerts (drop_new, every
// drop counted) without slowing the others; each tenant keeps its last
// alerts in a cache.
//
//	go run ./examples/notifications
package main

import "github.com/felixmq/felix/demo"

func main() { demo.Main("notifications") }
