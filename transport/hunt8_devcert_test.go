//go:build linux

package transport

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devCertChildEnv carries the data dir to the child process of
// TestDevCertUnreadableKeyRefused.
const devCertChildEnv = "FELIX_TEST_DEVCERT_DIR"

// A development key that exists but the broker's user may not read (a data
// dir first used as root, then given to a service user) is refused with an
// error that says so, and neither file is replaced: a new certificate would
// break every client that pinned the old one (before: "regenerating
// development certificate reason=unreadable: permission denied").
func TestDevCertUnreadableKeyRefused(t *testing.T) {
	if dir := os.Getenv(devCertChildEnv); dir != "" { // the child, as nobody
		_, err := ServerTLSConfig(TLSOptions{DataDir: dir}, nil)
		if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), DevKeyFile) {
			t.Fatalf("ServerTLSConfig with an unreadable key: %v, want a permission error naming %s", err, DevKeyFile)
		}
		return
	}
	dir, err := os.MkdirTemp("", "felix-devcert-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	writeCertFiles(t, dir, DevCertFile, DevKeyFile, time.Now())
	certBefore, _ := os.ReadFile(devCertPath(dir))
	keyBefore, _ := os.ReadFile(devKeyPath(dir))

	if os.Geteuid() != 0 {
		if err := os.Chmod(devKeyPath(dir), 0); err != nil {
			t.Fatal(err)
		}
		_, err := ServerTLSConfig(TLSOptions{DataDir: dir}, nil)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("ServerTLSConfig with an unreadable key: %v, want a permission error", err)
		}
	} else {
		// Root reads any file: the broker runs as nobody in a child
		// process, in a data dir it owns, with the key still root's (0600).
		const nobody = 65534
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		// The test binary's own directory is private: nobody runs a copy.
		self, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "transport.test")
		if err := os.WriteFile(bin, self, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestDevCertUnreadableKeyRefused$", "-test.count=1")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), devCertChildEnv+"="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("broker as nobody: %v\n%s", err, out)
		}
	}
	certAfter, _ := os.ReadFile(devCertPath(dir))
	if err := os.Chmod(devKeyPath(dir), 0o600); err != nil {
		t.Fatal(err)
	}
	keyAfter, _ := os.ReadFile(devKeyPath(dir))
	if !bytes.Equal(certBefore, certAfter) || !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("the stored development certificate or key was replaced")
	}
}
