package cache

import (
	"errors"
	"strings"
	"testing"
)

// A failed condition's message quotes at most the start of a long key:
// the message goes back to the client in a reply frame, and the whole key,
// quoted, could be several times the frame limit.
func TestHunt4ConditionErrorBoundsLongKeys(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	long := strings.Repeat(`"`, 1<<20)
	mustPut(t, c, long, "v", PutOptions{})
	for _, opt := range []PutOptions{{IfAbsent: true}, {IfVersion: new(uint64)}} {
		_, err := c.Put(long, []byte("w"), opt)
		var ce *ConditionError
		if !errors.As(err, &ce) || ce.Key != long || ce.Current == 0 {
			t.Fatalf("Put %+v: %v", opt, err)
		}
		if msg := err.Error(); len(msg) > 256 || !strings.Contains(msg, `"\"\"\"`) || !strings.Contains(msg, "(1048576 bytes)") {
			t.Fatalf("message of %d bytes: %.300s", len(msg), msg)
		}
	}
	// A multi-byte rune is not cut in half, and short keys are quoted whole.
	key := strings.Repeat("é", 40)
	if got := (&ConditionError{Key: key}).Error(); !strings.Contains(got, `"`+strings.Repeat("é", 32)+`"…`) {
		t.Fatalf("long UTF-8 key: %s", got)
	}
	if got := (&ConditionError{Key: "k", Current: 3}).Error(); got != `cache condition failed: key "k" is at version 3` {
		t.Fatalf("short key: %s", got)
	}
}
