// Command cache is `felix demo cache` as a program:
// put and get, a hit and a miss, an entry with a TTL and its
// remaining-time read, compare-and-set between two writers, and a latency
// table for a few payload sizes.
//
//	go run ./examples/cache
package main

import "github.com/felixmq/felix/demo"

func main() { demo.Main("cache") }
