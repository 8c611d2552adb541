package transport

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/quic-go/quic-go"
)

// ResetKeyFile is the file in the data dir that keeps the stateless reset key.
const ResetKeyFile = "quic-reset.key"

// LoadOrCreateResetKey returns the stateless reset key kept in dir, creating
// it (32 random bytes, mode 0600) on first use. With the same key across
// restarts, a restarted broker resets its predecessor's connections at once
// instead of leaving clients to time out. Concurrent calls on one dir, in
// this process or others, return the same key.
func LoadOrCreateResetKey(dir string) (*quic.StatelessResetKey, error) {
	var key quic.StatelessResetKey
	path := filepath.Join(dir, ResetKeyFile)
	// Brokers starting at once on a fresh dir must agree on one key. A dir
	// that cannot be locked only loses that guarantee.
	unlock, _ := lockDataDirFiles(dir)
	defer unlock()
	b, err := os.ReadFile(path)
	if err == nil && len(b) == len(key) {
		copy(key[:], b)
		return &key, nil
	}
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("generate reset key: %w", err)
	}
	if err := writeFileAtomic(path, key[:], 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &key, nil
}
