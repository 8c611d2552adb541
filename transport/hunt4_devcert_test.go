package transport

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Brokers (or tests, or a broker and `felix demo`) starting at the same
// time on a fresh data dir must end with one development certificate:
// the files on disk are a matching pair and every one of them serves the
// certificate in dev-cert.pem, the file clients pin.
func TestHunt4DevCertConcurrentFirstStart(t *testing.T) {
	const starts = 8
	for round := range 10 {
		dir := filepath.Join(t.TempDir(), "data")
		confs := make([]*tls.Config, starts)
		var wg sync.WaitGroup
		for i := range confs {
			wg.Go(func() {
				conf, err := ServerTLSConfig(TLSOptions{DataDir: dir}, nil)
				if err != nil {
					t.Errorf("start %d: %v", i, err)
					return
				}
				confs[i] = conf
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		onDisk, err := tls.LoadX509KeyPair(devCertPath(dir), devKeyPath(dir))
		if err != nil {
			t.Fatalf("round %d: files left on disk: %v", round, err)
		}
		for i, conf := range confs {
			if !bytes.Equal(conf.Certificates[0].Certificate[0], onDisk.Certificate[0]) {
				t.Fatalf("round %d: start %d serves a certificate that is not dev-cert.pem", round, i)
			}
		}
	}
}

// A stored development certificate that is not valid yet (written while
// the clock was ahead) is replaced, as an expired one is: clients would
// refuse it.
func TestHunt4DevCertNotYetValidRegenerated(t *testing.T) {
	dir := t.TempDir()
	writeCertFiles(t, dir, DevCertFile, DevKeyFile, time.Now().Add(48*time.Hour))
	log, logs := newTestLogger()
	conf, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := leafOf(t, conf); time.Now().Before(leaf.NotBefore) {
		t.Errorf("certificate in use is not valid before %v", leaf.NotBefore)
	}
	if !strings.Contains(logs.String(), "regenerating") || !strings.Contains(logs.String(), "not valid before") {
		t.Errorf("log does not say why the certificate was replaced:\n%s", logs)
	}
}

// A stored development key readable by others is made private (0600) and
// the log says so; the certificate is kept.
func TestHunt4DevKeyPermissionsTightened(t *testing.T) {
	dir := t.TempDir()
	writeCertFiles(t, dir, DevCertFile, DevKeyFile, time.Now())
	if err := os.Chmod(devKeyPath(dir), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(devCertPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newTestLogger()
	if _, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(devKeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("dev key mode %v, want 0600", perm)
	}
	if !strings.Contains(logs.String(), "dev-key.pem") || !strings.Contains(logs.String(), "0600") {
		t.Errorf("log does not report the key's permissions:\n%s", logs)
	}
	if after, _ := os.ReadFile(devCertPath(dir)); !bytes.Equal(before, after) {
		t.Error("a valid development certificate was replaced")
	}
}

// A stored pair whose key does not belong to the certificate is replaced,
// naming the reason.
func TestHunt4DevCertMismatchedKeyRegenerated(t *testing.T) {
	dir := t.TempDir()
	writeCertFiles(t, dir, DevCertFile, DevKeyFile, time.Now())
	other := t.TempDir()
	_, otherKey := writeCertFiles(t, other, "c.pem", "k.pem", time.Now())
	replaceFiles(t, time.Now(), [2]string{otherKey, devKeyPath(dir)})
	log, logs := newTestLogger()
	if _, err := ServerTLSConfig(TLSOptions{DataDir: dir}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "does not match") {
		t.Errorf("log does not name the mismatch:\n%s", logs)
	}
	if _, err := tls.LoadX509KeyPair(devCertPath(dir), devKeyPath(dir)); err != nil {
		t.Errorf("stored pair still unusable: %v", err)
	}
}

// The same across processes: brokers started at once on one fresh data
// dir (this test binary, re-run as helper processes) all serve the
// certificate left in dev-cert.pem.
func TestHunt4DevCertConcurrentProcesses(t *testing.T) {
	if dir := os.Getenv("FELIX_HUNT4_DEVCERT_DIR"); dir != "" {
		conf, err := ServerTLSConfig(TLSOptions{DataDir: dir}, nil)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Printf("CERT %x\n", sha256.Sum256(conf.Certificates[0].Certificate[0]))
		os.Exit(0)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	for round := range 3 {
		dir := filepath.Join(t.TempDir(), "data")
		const procs = 6
		outs := make([][]byte, procs)
		errs := make([]error, procs)
		var wg sync.WaitGroup
		for i := range procs {
			wg.Go(func() {
				cmd := exec.Command(exe, "-test.run=^TestHunt4DevCertConcurrentProcesses$")
				cmd.Env = append(os.Environ(), "FELIX_HUNT4_DEVCERT_DIR="+dir)
				outs[i], errs[i] = cmd.Output()
			})
		}
		wg.Wait()
		onDisk, err := tls.LoadX509KeyPair(devCertPath(dir), devKeyPath(dir))
		if err != nil {
			t.Fatalf("round %d: files left on disk: %v", round, err)
		}
		want := fmt.Sprintf("CERT %x", sha256.Sum256(onDisk.Certificate[0]))
		for i := range procs {
			if errs[i] != nil {
				t.Fatalf("round %d: process %d: %v\n%s", round, i, errs[i], outs[i])
			}
			if !strings.Contains(string(outs[i]), want) {
				t.Fatalf("round %d: process %d serves a certificate that is not dev-cert.pem:\n%s", round, i, outs[i])
			}
		}
	}
}
