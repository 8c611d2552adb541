package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A JWKS's member names are matched exactly, as its JSON is the
// reference's: "X" or "KTY" is an unknown member, not x or kty (as
// encoding/json's case-insensitive match made them, the last one
// winning), and a name given twice in one object is an error.
func TestParseJWKSMemberNamesAreExact(t *testing.T) {
	good, evil := newSigner(t), newSigner(t)
	x, evilX := b64(good.PublicKey()), b64(evil.PublicKey())
	key := func(extra string) string {
		return `{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"` + x + `"` + extra + `}`
	}

	for _, tc := range []struct{ name, doc string }{
		{"X", `{"keys":[` + key(`,"X":"`+evilX+`"`) + `]}`},
		{"Kelvin kty", `{"keys":[` + key(`,"\u212Aty":"RSA"`) + `]}`},
		{"KID", `{"keys":[` + key(`,"KID":"k2"`) + `]}`},
		{"USE", `{"keys":[` + key(`,"USE":"enc"`) + `]}`},
		{"KEYS", `{"keys":[` + key(``) + `],"KEYS":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := ParseJWKS([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			k, ok := ks.Lookup("k1")
			if ks.Len() != 1 || !ok || !k.Public.Equal(good.PublicKey()) {
				t.Errorf("keys %+v, want only k1 with the public key of x", ks.Keys())
			}
		})
	}
	// A key named only in upper case is not an Ed25519 key (no kty).
	upper := `{"keys":[{"KTY":"OKP","CRV":"Ed25519","KID":"k1","X":"` + x + `"}]}`
	if ks, err := ParseJWKS([]byte(upper)); err != nil || ks.Len() != 0 {
		t.Errorf("upper-case names: %d keys, err %v; want none", ks.Len(), err)
	}
	if _, err := ParseJWKS([]byte(`{"KEYS":[` + key(``) + `]}`)); err == nil {
		t.Error(`"KEYS" only: parsed, want no "keys" array`)
	}

	for _, tc := range []struct{ name, doc string }{
		{"x twice", `{"keys":[` + key(`,"x":"`+evilX+`"`) + `]}`},
		{"kid twice", `{"keys":[` + key(`,"kid":"k2"`) + `]}`},
		{"keys twice", `{"keys":[` + key(``) + `],"keys":[]}`},
		{"escaped x twice", `{"keys":[` + key(`,"\u0078":"`+evilX+`"`) + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJWKS([]byte(tc.doc))
			if !errors.Is(err, ErrDuplicateName) {
				t.Fatalf("err = %v, want %v", err, ErrDuplicateName)
			}
		})
	}
}

// jwksOf returns a JWKS document of n new Ed25519 keys.
func jwksOf(t *testing.T, n int) []byte {
	t.Helper()
	keys := make([]Key, n)
	for i := range keys {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = Key{Public: pub}
	}
	ks, err := NewKeySet(keys[:min(n, MaxKeySetKeys)]...)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[min(n, MaxKeySetKeys):] { // beyond what a KeySet holds
		doc = fmt.Appendf(doc[:len(doc)-2], `,{"kty":"OKP","kid":%q,"crv":"Ed25519","x":%q}]}`, KeyID(k.Public), b64(k.Public))
	}
	return doc
}

// A key set holds at most MaxKeySetKeys keys: a token whose kid is unknown
// or absent is tried against every key, so a JWKS of thousands of keys (a
// megabyte holds 8000) would make each forged token cost thousands of
// signature checks. A larger JWKS is refused at load, and at reload,
// which keeps the previous keys.
func TestKeySetIsBounded(t *testing.T) {
	if ks, err := ParseJWKS(jwksOf(t, MaxKeySetKeys)); err != nil || ks.Len() != MaxKeySetKeys {
		t.Fatalf("%d keys: len %d, err %v", MaxKeySetKeys, ks.Len(), err)
	}
	big := jwksOf(t, MaxKeySetKeys+1)
	_, err := ParseJWKS(big)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d", MaxKeySetKeys)) {
		t.Fatalf("%d keys: err = %v, want at most %d", MaxKeySetKeys+1, err, MaxKeySetKeys)
	}
	var keys []Key
	for range MaxKeySetKeys + 1 {
		keys = append(keys, Key{Public: newSigner(t).PublicKey()})
	}
	if _, err := NewKeySet(keys...); err == nil {
		t.Errorf("NewKeySet of %d keys: no error", len(keys))
	}
	if _, err := Merge(mustKeySet(t, keys[:MaxKeySetKeys]...), mustKeySet(t, keys[MaxKeySetKeys:]...)); err == nil {
		t.Errorf("Merge to %d keys: no error", len(keys))
	}

	// Load and reload of a file.
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadJWKSFile(path); err == nil {
		t.Errorf("LoadJWKSFile of %d keys: no error", MaxKeySetKeys+1)
	}
	ctx := context.Background()
	if _, err := NewKeySource(ctx, KeySourceOptions{File: path}); err == nil {
		t.Errorf("NewKeySource of %d keys: no error", MaxKeySetKeys+1)
	}
	sg := newSigner(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeJWKS(t, path, t0, sg)
	log, _ := testLogger()
	src, err := NewKeySource(ctx, KeySourceOptions{File: path, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, big, t0)
	if replaced, err := src.Reload(ctx); replaced || err == nil {
		t.Errorf("reload of %d keys: replaced %v, err %v; want kept, error", MaxKeySetKeys+1, replaced, err)
	}
	if _, ok := src.Current().Lookup(sg.KeyID()); !ok || src.Current().Len() != 1 {
		t.Errorf("after a refused reload: %d keys, want the previous one", src.Current().Len())
	}
}

func mustKeySet(t *testing.T, keys ...Key) *KeySet {
	t.Helper()
	ks, err := NewKeySet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
