// Command latency is `felix demo latency` as a program:
// the latency matrix, short: fanout {1,10} × batch {1,64} × payload
// {0,256,1024,4096} B, printing p50/p99/p999 and delivered msgs/s per case.
//
//	go run ./examples/latency
package main

import "github.com/felixmq/felix/demo"

func main() { demo.Main("latency") }
