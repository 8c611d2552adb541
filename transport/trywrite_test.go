package transport

import (
	"errors"
	"testing"
)

// recordingStream is a TryWriteAll that records what it was given.
type recordingStream struct {
	calls int
	err   error
}

func (s *recordingStream) TryWriteAll([]byte) error { s.calls++; return s.err }

func TestTryWrite(t *testing.T) {
	for _, c := range []struct {
		name      string
		size      int
		streamErr error
		want      bool
		wantCalls int
	}{
		{"small, accepted", 100, nil, true, 1},
		{"exactly the limit", MaxTryWriteBytes, nil, true, 1},
		{"small, no credit", 100, errors.New("would block"), false, 1},
		{"over the limit is never queued", MaxTryWriteBytes + 1, nil, false, 0},
		{"a batch", 16 << 10, nil, false, 0},
	} {
		s := &recordingStream{err: c.streamErr}
		if got := TryWrite(s, make([]byte, c.size)); got != c.want || s.calls != c.wantCalls {
			t.Errorf("%s: TryWrite = %v with %d TryWriteAll calls; want %v with %d", c.name, got, s.calls, c.want, c.wantCalls)
		}
	}
}
