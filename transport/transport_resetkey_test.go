package transport

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateResetKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateResetKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateResetKey(dir)
	if err != nil || *k1 != *k2 {
		t.Fatalf("key not reused: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, ResetKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	os.WriteFile(filepath.Join(dir, ResetKeyFile), []byte("short"), 0o600)
	k3, err := LoadOrCreateResetKey(dir)
	if err != nil || *k3 == *k1 {
		t.Fatalf("truncated key file not replaced: %v", err)
	}
}
