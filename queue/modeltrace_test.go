package queue

import (
	"fmt"
	"strings"
	"testing"
)

// opTrace is the part of a model test's world that fails the test with
// the last operations it noted.
type opTrace struct {
	t     *testing.T
	trace []string
}

func (w *opTrace) fatalf(format string, args ...any) {
	w.t.Helper()
	tail := w.trace[max(0, len(w.trace)-40):]
	w.t.Fatalf("%s\nlast operations:\n  %s", fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

func (w *opTrace) note(format string, args ...any) {
	w.trace = append(w.trace, fmt.Sprintf(format, args...))
}
