// Command simple is `felix demo simple` as a program:
// it subscribes to a stream, publishes "hello" and "world" and prints
// the subscription confirmation and both events.
//
//	go run ./examples/simple
package main

import "github.com/felixmq/felix/demo"

func main() { demo.Main("simple") }
