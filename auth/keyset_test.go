package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestJWKSFormat(t *testing.T) {
	s := newSigner(t)
	got, err := s.PublicJWKS()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keys":[{"kty":"OKP","kid":"` + s.KeyID() + `","alg":"EdDSA","use":"sig","crv":"Ed25519","x":"` +
		b64(s.PublicKey()) + `"}]}`
	if string(got) != want {
		t.Errorf("jwks\n got %s\nwant %s", got, want)
	}
	back, err := ParseJWKS(got)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := back.Lookup(s.KeyID())
	if back.Len() != 1 || !ok || !k.Public.Equal(s.PublicKey()) || k.Tenant != "" {
		t.Errorf("parsed back: %+v", back.Keys())
	}
	empty, _ := json.Marshal(&KeySet{})
	if string(empty) != `{"keys":[]}` {
		t.Errorf("empty set: %s", empty)
	}
}

func TestParseJWKS(t *testing.T) {
	s := newSigner(t)
	x := b64(s.PublicKey())
	// A mixed document: the RSA and encryption keys are skipped.
	mixed := `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
		{"kty":"OKP","crv":"X25519","kid":"x","x":"` + x + `"},
		{"kty":"OKP","crv":"Ed25519","kid":"enc","use":"enc","x":"` + x + `"},
		{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"` + x + `="}]}`
	ks, err := ParseJWKS([]byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 1 {
		t.Errorf("mixed: %d keys, want 1", ks.Len())
	}
	for name, doc := range map[string]string{
		"not json":  `{`,
		"no keys":   `{}`,
		"no kid":    `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]}`,
		"bad alg":   `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"ES256","x":"` + x + `"}]}`,
		"short x":   `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`,
		"bad x":     `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"%%%"}]}`,
		"duplicate": `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `"}]}`,
	} {
		if _, err := ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestLoadAndFetchJWKS(t *testing.T) {
	s := newSigner(t)
	doc, _ := s.PublicJWKS()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadJWKSFile(path)
	if err != nil || ks.Len() != 1 {
		t.Fatalf("LoadJWKSFile: %v", err)
	}
	if _, err := LoadJWKSFile(path + ".missing"); err == nil {
		t.Error("missing file loaded")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks":
			_, _ = w.Write(doc)
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte(" "), MaxJWKSBytes+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	ks, err = FetchJWKS(ctx, srv.URL+"/jwks")
	if err != nil || ks.Len() != 1 {
		t.Fatalf("FetchJWKS: %v", err)
	}
	if _, err := FetchJWKS(ctx, srv.URL+"/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: err = %v", err)
	}
	if _, err := FetchJWKS(ctx, srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized: err = %v", err)
	}
}

// testLogger logs into a buffer. slog handlers serialize their writes;
// tests read the buffer only after the writers are done (or synchronized by
// a channel), so a plain buffer is race-free.
func testLogger() (*slog.Logger, *bytes.Buffer) {
	b := &bytes.Buffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

// writeJWKS writes the signers' JWKS to path with the given modification
// time (so changes are seen whatever the file system's time granularity).
func writeJWKS(t *testing.T, path string, mtime time.Time, signers ...*Signer) {
	t.Helper()
	var keys []Key
	for _, s := range signers {
		keys = append(keys, Key{ID: s.KeyID(), Public: s.PublicKey()})
	}
	ks, err := NewKeySet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(ks)
	writeFile(t, path, doc, mtime)
}

func writeFile(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// fileKeySource is a KeySource over a JWKS file holding a's keys,
// written with modification time t0; b is a second key for rotations.
type fileKeySource struct {
	a, b *Signer
	path string
	t0   time.Time
	src  *KeySource
	logs *bytes.Buffer // the source's log
}

func newFileKeySource(t *testing.T) fileKeySource {
	t.Helper()
	e := fileKeySource{a: newSigner(t), b: newSigner(t), path: filepath.Join(t.TempDir(), "jwks.json"),
		t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	writeJWKS(t, e.path, e.t0, e.a)
	log, logs := testLogger()
	src, err := NewKeySource(context.Background(), KeySourceOptions{File: e.path, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.src, e.logs = src, logs
	return e
}

func TestKeySourceFileReload(t *testing.T) {
	ctx := context.Background()
	env := newFileKeySource(t)
	a, b, path, t0, src := env.a, env.b, env.path, env.t0, env.src
	logs := env.logs
	v := &Verifier{Keys: src}
	tokA, tokB := mustIssue(t, a, Claims{Tenant: "t"}), mustIssue(t, b, Claims{Tenant: "t"})
	if _, err := v.Verify(tokA, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tokB, "t"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("b before reload: %v", err)
	}
	if changed, err := src.Reload(ctx); changed || err != nil {
		t.Fatalf("unchanged file: changed %v err %v", changed, err)
	}

	writeJWKS(t, path, t0.Add(time.Second), a, b) // rotation: both keys
	if changed, err := src.Reload(ctx); !changed || err != nil {
		t.Fatalf("rotated file: changed %v err %v", changed, err)
	}
	for _, tok := range []string{tokA, tokB} {
		if _, err := v.Verify(tok, "t"); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}

	writeFile(t, path, []byte(`{"keys":[{"kty":`), t0.Add(2*time.Second)) // a broken write
	if changed, err := src.Reload(ctx); changed || err == nil {
		t.Fatalf("broken file: changed %v err %v", changed, err)
	}
	if _, err := v.Verify(tokB, "t"); err != nil {
		t.Fatalf("previous keys dropped after a failed reload: %v", err)
	}
	writeFile(t, path, []byte(`{"keys":[]}`), t0.Add(3*time.Second))
	if _, err := src.Reload(ctx); err == nil {
		t.Fatal("empty key set accepted")
	}
	if !strings.Contains(logs.String(), "keeping the previous keys") {
		t.Errorf("failed reload not logged:\n%s", logs)
	}

	writeJWKS(t, path, t0.Add(4*time.Second), b) // a retired
	if _, err := src.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tokA, "t"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key still accepted: %v", err)
	}
}

func TestKeySourceURLRunWithTicks(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	var doc atomic.Value
	first, _ := a.PublicJWKS()
	doc.Store(first)
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(doc.Load().([]byte))
	}))
	defer srv.Close()

	ticks := make(chan time.Time)
	log, logs := testLogger()
	src, err := NewKeySource(context.Background(), KeySourceOptions{URL: srv.URL, Ticks: ticks, Tenant: "t", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	// tick hands Run a tick and waits until it has been handled: Run takes
	// the second value only after the reload of the first.
	tick := func() {
		ticks <- time.Time{}
		ticks <- time.Time{}
	}
	v := &Verifier{Keys: src}
	tokB := mustIssue(t, b, Claims{Tenant: "t"})
	if _, err := v.Verify(tokB, "t"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("b before reload: %v", err)
	}
	second, _ := b.PublicJWKS()
	doc.Store(second)
	tick()
	if _, err := v.Verify(tokB, "t"); err != nil {
		t.Fatalf("b after reload: %v", err)
	}
	if k := src.Current().Keys(); len(k) != 1 || k[0].Tenant != "t" {
		t.Errorf("keys not restricted to the source's tenant: %+v", k)
	}
	fail.Store(true)
	tick()
	if _, err := v.Verify(tokB, "t"); err != nil {
		t.Fatalf("keys lost after a failed fetch: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if !strings.Contains(logs.String(), "503") { // read after Run returned
		t.Errorf("failed fetch not logged:\n%s", logs)
	}
}

func TestKeySourceOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := NewKeySource(ctx, KeySourceOptions{}); err == nil {
		t.Error("no source accepted")
	}
	if _, err := NewKeySource(ctx, KeySourceOptions{File: "a", URL: "b"}); err == nil {
		t.Error("two sources accepted")
	}
	if _, err := NewKeySource(ctx, KeySourceOptions{File: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing file accepted")
	}
}

// A file whose load failed is tried again at the next reload, not only
// once its modification time or size changes: a fix that keeps both (a
// chmod of a file the broker could not read, a same-size rewrite within
// the file system's mtime resolution) is picked up.
func TestKeySourceRetriesAFailedFile(t *testing.T) {
	ctx := context.Background()
	env := newFileKeySource(t)
	b, path, t0, src := env.b, env.path, env.t0, env.src
	good, err := json.Marshal(b.KeySet())
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(good, []byte(`"keys"`), []byte(`"keyz"`), 1) // same size, unusable
	writeFile(t, path, bad, t0.Add(time.Second))
	if _, err := src.Reload(ctx); err == nil {
		t.Fatal("broken file accepted")
	}
	writeFile(t, path, good, t0.Add(time.Second)) // fixed: same size, same mtime
	if changed, err := src.Reload(ctx); !changed || err != nil {
		t.Fatalf("fixed file: changed %v err %v", changed, err)
	}
	if _, err := (&Verifier{Keys: src}).Verify(mustIssue(t, b, Claims{Tenant: "t"}), "t"); err != nil {
		t.Fatalf("key of the fixed file: %v", err)
	}
}
