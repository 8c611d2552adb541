package main

import "testing"

// A deferred run sees the cleanups added after the defer statement (the
// peers a bench command starts must be stopped).
func TestCleanupsRunAddedAfterDefer(t *testing.T) {
	var ran []int
	func() {
		var stop cleanups
		defer stop.run()
		stop.add(func() error { ran = append(ran, 1); return nil })
		stop.add(func() error { ran = append(ran, 2); return nil })
	}()
	if len(ran) != 2 || ran[0] != 2 || ran[1] != 1 {
		t.Fatalf("cleanups ran %v, want [2 1]", ran)
	}
}
