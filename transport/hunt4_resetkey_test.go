package transport

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Brokers starting at once on a fresh data dir end with one stateless
// reset key: every one of them uses the key left in the file, so that
// whichever restarts next can reset the others' connections.
func TestHunt4ResetKeyConcurrentFirstStart(t *testing.T) {
	for round := range 10 {
		dir := t.TempDir()
		const starts = 8
		keys := make([][]byte, starts)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, err := LoadOrCreateResetKey(dir)
				if err != nil {
					t.Errorf("start %d: %v", i, err)
					return
				}
				keys[i] = bytes.Clone(k[:])
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		onDisk, err := os.ReadFile(filepath.Join(dir, ResetKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			if !bytes.Equal(k, onDisk) {
				t.Fatalf("round %d: start %d uses a reset key that is not the one in the file", round, i)
			}
		}
	}
}
