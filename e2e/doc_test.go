// Package e2e holds end-to-end tests: a real broker (QUIC on 127.0.0.1) and
// the real Go SDK, checking the behaviour the issues promise.
package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
