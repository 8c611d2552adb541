package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
)

func runToken(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, append([]string{"token"}, args...)...)
}

func TestTokenKeygenIssueVerify(t *testing.T) {
	dir := t.TempDir()
	key, jwks := filepath.Join(dir, "key.pem"), filepath.Join(dir, "jwks.json")
	out, err := runToken(t, "keygen", "--out", key, "--jwks", jwks)
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if _, err := runToken(t, "keygen", "--out", key); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("keygen over an existing key: err = %v", err)
	}

	out, err = runToken(t, "issue", "--key", key, "--tenant", "t1", "--sub", "ops",
		"--perm", "stream.publish:stream:t1/*/*", "--perm", "cache.read:cache:t1/ns/*", "--ttl", "15m")
	if err != nil {
		t.Fatalf("issue: %v\n%s", err, out)
	}
	tok := strings.TrimSpace(out)
	ks, err := auth.LoadJWKSFile(jwks)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := (&auth.Verifier{Keys: ks}).Verify(tok, "t1")
	if err != nil {
		t.Fatalf("verify the issued token: %v", err)
	}
	if claims.Subject != "ops" || !slices.Equal(claims.Perms, []string{"stream.publish:stream:t1/*/*", "cache.read:cache:t1/ns/*"}) ||
		claims.ExpiresAt.Sub(claims.IssuedAt) != 15*time.Minute {
		t.Errorf("claims %+v", claims)
	}
	if _, err := (&auth.Verifier{Keys: ks}).Verify(tok, "t2"); !errors.Is(err, auth.ErrWrongTenant) {
		t.Errorf("other tenant: err = %v", err)
	}

	// felix token jwks prints the same JWKS keygen wrote.
	out, err = runToken(t, "jwks", "--key", key)
	if err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(jwks)
	if out != string(written) {
		t.Errorf("jwks output %q differs from keygen's %q", out, written)
	}

	// --force replaces the key: the old token no longer verifies.
	if _, err := runToken(t, "keygen", "--out", key, "--force"); err != nil {
		t.Fatal(err)
	}
	out, _ = runToken(t, "jwks", "--key", key)
	ks2, err := auth.ParseJWKS([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&auth.Verifier{Keys: ks2}).Verify(tok, "t1"); !errors.Is(err, auth.ErrUnknownKey) {
		t.Errorf("token of the replaced key: err = %v", err)
	}
}

func TestTokenIssueErrors(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	if _, err := runToken(t, "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no key":        {"issue", "--tenant", "t"},
		"no tenant":     {"issue", "--key", key},
		"bad perm":      {"issue", "--key", key, "--tenant", "t", "--perm", "stream.fly:stream:t/n/s"},
		"missing key":   {"issue", "--key", filepath.Join(dir, "nope.pem"), "--tenant", "t"},
		"zero ttl":      {"issue", "--key", key, "--tenant", "t", "--ttl", "0s"},
		"keygen no out": {"keygen"},
		"jwks no key":   {"jwks"},
	} {
		if _, err := runToken(t, args...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
