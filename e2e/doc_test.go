// Package e2e holds end-to-end tests: a real broker (QUIC on 127.0.0.1) and
// the real Go SDK, checking the behaviour the issues promise.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain is goleak.VerifyTestMain, and removes the felix binary the
// process tests built (buildFelix).
func TestMain(m *testing.M) {
	code := m.Run()
	removeFelixBinary()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
