// Package testwait waits in tests for something that must happen, with a
// bound against hangs: reaching the bound fails the test. The bound is
// never a measure of speed (the machines tests run on are shared).
package testwait

import (
	"testing"
	"time"
)

// Liveness bounds every wait.
const Liveness = 30 * time.Second

// Eventually polls cond every millisecond until it holds, failing the
// test after Liveness.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Liveness)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v: %s", Liveness, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Within fails the test if done is not closed within Liveness.
func Within(t testing.TB, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(Liveness):
		t.Fatalf("%s: did not happen within %v", what, Liveness)
	}
}
