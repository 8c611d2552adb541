package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/felixmq/felix/internal/testclock"
)

func newSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustIssue(t *testing.T, s *Signer, c Claims) string {
	t.Helper()
	tok, err := s.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// segments decodes a token's header and claims.
func segments(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestIssueFormat(t *testing.T) {
	clock := testclock.New()
	s := newSigner(t)
	s.Now = clock.Now
	tok := mustIssue(t, s, Claims{Subject: "alice", Tenant: "t1", Perms: []string{"stream.publish:stream:t1/*/*"}})
	h, c := segments(t, tok)
	if h["alg"] != "EdDSA" || h["kid"] != s.KeyID() || len(s.KeyID()) != 32 {
		t.Errorf("header %v (kid %q)", h, s.KeyID())
	}
	iat := float64(clock.Now().Unix())
	want := map[string]any{
		"iss": "felix-auth", "aud": "felix-broker", "sub": "alice", "tid": "t1",
		"iat": iat, "exp": iat + 900, "perms": []any{"stream.publish:stream:t1/*/*"},
	}
	for k, v := range want {
		got, _ := json.Marshal(c[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("claim %s = %s, want %s", k, got, exp)
		}
	}
	if len(c) != len(want) {
		t.Errorf("claims %v, want exactly %v", c, want)
	}

	v := &Verifier{Keys: s.KeySet(), Now: clock.Now}
	got, err := v.Verify(tok, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "alice" || got.Tenant != "t1" || got.Issuer != DefaultIssuer || got.Audience != DefaultAudience ||
		len(got.Perms) != 1 || !got.ExpiresAt.Equal(clock.Now().Add(DefaultTTL)) || !got.IssuedAt.Equal(clock.Now()) {
		t.Errorf("claims %+v", got)
	}
}

func TestIssueRefusesBadClaims(t *testing.T) {
	s := newSigner(t)
	if _, err := s.Issue(Claims{Subject: "a"}); err == nil {
		t.Error("issued without tenant")
	}
	if _, err := s.Issue(Claims{Tenant: "t", Perms: []string{"nonsense"}}); err == nil {
		t.Error("issued an invalid permission")
	}
}

// signRaw signs arbitrary claims with alg and key (for tokens Issue would
// not make).
func signRaw(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyFailureReasons(t *testing.T) {
	clock := testclock.New()
	now := clock.Now()
	s := newSigner(t)
	s.Now = clock.Now
	other := newSigner(t)
	v := &Verifier{Keys: s.KeySet(), Now: clock.Now}
	good := Claims{Subject: "alice", Tenant: "t1", Perms: []string{"stream.publish:stream:t1/*/*"}}
	with := func(f func(*Claims)) string {
		c := good
		f(&c)
		return mustIssue(t, s, c)
	}
	base := jwt.MapClaims{"iss": DefaultIssuer, "aud": DefaultAudience, "tid": "t1", "sub": "a", "exp": now.Add(time.Minute).Unix()}
	valid := mustIssue(t, s, good)
	parts := strings.Split(valid, ".")
	sig := []byte(parts[2])
	if sig[3] == 'A' { // change one character, staying base64url
		sig[3] = 'B'
	} else {
		sig[3] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	forgedClaims := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"felix-auth","aud":"felix-broker","tid":"t1","exp":9999999999,"perms":["*:*"]}`)) + "." + parts[2]
	noExp := jwt.MapClaims{"iss": DefaultIssuer, "aud": DefaultAudience, "tid": "t1"}

	for _, c := range []struct {
		name   string
		token  string
		tenant string
		want   error
	}{
		{"empty", "", "t1", ErrNoToken},
		{"garbage", "not a token", "t1", ErrMalformed},
		{"two parts", "abc.def", "t1", ErrMalformed},
		{"bad base64", "!!!.###.$$$", "t1", ErrMalformed},
		{"tampered signature", tampered, "t1", ErrBadSignature},
		{"forged claims", forgedClaims, "t1", ErrBadSignature},
		{"alg none", signRaw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, s.KeyID(), base), "t1", ErrBadSignature},
		{"alg HS256 with the public key", signRaw(t, jwt.SigningMethodHS256, []byte(s.PublicKey()), s.KeyID(), base), "t1", ErrBadSignature},
		{"other key, unknown kid", mustIssue(t, other, good), "t1", ErrUnknownKey},
		{"other key, known kid", signRaw(t, jwt.SigningMethodEdDSA, other.key, s.KeyID(), base), "t1", ErrBadSignature},
		{"no exp", signRaw(t, jwt.SigningMethodEdDSA, s.key, s.KeyID(), noExp), "t1", ErrMalformed},
		{"expired", with(func(c *Claims) { c.IssuedAt, c.ExpiresAt = now.Add(-time.Hour), now.Add(-61*time.Second) }), "t1", ErrExpired},
		{"issued in the future", with(func(c *Claims) { c.IssuedAt = now.Add(2 * time.Minute) }), "t1", ErrNotYetValid},
		{"nbf in the future", signRaw(t, jwt.SigningMethodEdDSA, s.key, s.KeyID(), jwt.MapClaims{
			"iss": DefaultIssuer, "aud": DefaultAudience, "tid": "t1", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(2 * time.Minute).Unix(),
		}), "t1", ErrNotYetValid},
		{"wrong issuer", with(func(c *Claims) { c.Issuer = "evil" }), "t1", ErrWrongIssuer},
		{"wrong audience", with(func(c *Claims) { c.Audience = "felix-controlplane" }), "t1", ErrWrongAudience},
		{"wrong tenant", valid, "t2", ErrWrongTenant},
		{"empty tenant", valid, "", ErrWrongTenant},
		{"aud not a string", signRaw(t, jwt.SigningMethodEdDSA, s.key, s.KeyID(), jwt.MapClaims{
			"iss": DefaultIssuer, "aud": 7, "tid": "t1", "exp": now.Add(time.Hour).Unix(),
		}), "t1", ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(c.token, c.tenant)
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want TokenError %v", err, c.want)
			}
			if c.token != "" && strings.Contains(err.Error(), c.token) {
				t.Errorf("error text contains the token: %v", err)
			}
		})
	}
	if _, err := (&Verifier{Now: clock.Now}).Verify(valid, "t1"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no keys: err = %v", err)
	}
}

func TestVerifyExpiryWithLeeway(t *testing.T) {
	clock := testclock.New()
	s := newSigner(t)
	s.Now = clock.Now
	s.TTL = 10 * time.Minute
	tok := mustIssue(t, s, Claims{Subject: "a", Tenant: "t"})
	v := &Verifier{Keys: s.KeySet(), Now: clock.Now}
	strict := &Verifier{Keys: s.KeySet(), Now: clock.Now, Leeway: -1}

	clock.Advance(10*time.Minute - time.Second)
	if _, err := strict.Verify(tok, "t"); err != nil {
		t.Fatalf("1 s before exp: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := strict.Verify(tok, "t"); !errors.Is(err, ErrExpired) {
		t.Fatalf("at exp without leeway: err = %v", err)
	}
	if _, err := v.Verify(tok, "t"); err != nil {
		t.Fatalf("at exp within the default 60 s leeway: %v", err)
	}
	clock.Advance(59 * time.Second)
	if _, err := v.Verify(tok, "t"); err != nil {
		t.Fatalf("59 s after exp: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := v.Verify(tok, "t"); !errors.Is(err, ErrExpired) {
		t.Fatalf("60 s after exp: err = %v", err)
	}
	custom := &Verifier{Keys: s.KeySet(), Now: clock.Now, Leeway: 5 * time.Minute}
	if _, err := custom.Verify(tok, "t"); err != nil {
		t.Fatalf("within a 5 min leeway: %v", err)
	}
}

func TestVerifyCustomIssuerAudience(t *testing.T) {
	s := newSigner(t)
	tok := mustIssue(t, s, Claims{Tenant: "t", Issuer: "cp", Audience: "admin-api"})
	v := &Verifier{Keys: s.KeySet(), Issuer: "cp", Audience: "admin-api"}
	if _, err := v.Verify(tok, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Keys: s.KeySet()}).Verify(tok, "t"); !errors.Is(err, ErrWrongIssuer) {
		t.Fatalf("default verifier: err = %v", err)
	}
	// An aud array containing our audience is accepted.
	arr := signRaw(t, jwt.SigningMethodEdDSA, s.key, s.KeyID(), jwt.MapClaims{
		"iss": DefaultIssuer, "aud": []string{"x", DefaultAudience}, "tid": "t", "exp": time.Now().Add(time.Hour).Unix(),
	})
	if _, err := (&Verifier{Keys: s.KeySet()}).Verify(arr, "t"); err != nil {
		t.Fatalf("aud array: %v", err)
	}
}

func TestVerifyKeyRotationAndTenantKeys(t *testing.T) {
	oldKey, newKey, t2Key := newSigner(t), newSigner(t), newSigner(t)
	ks, err := Merge(oldKey.KeySet(), newKey.KeySet(), t2Key.KeySet().ForTenant("t2"))
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: ks}
	for _, s := range []*Signer{oldKey, newKey} {
		if _, err := v.Verify(mustIssue(t, s, Claims{Tenant: "t1"}), "t1"); err != nil {
			t.Errorf("key %s: %v", s.KeyID(), err)
		}
	}
	// A token without kid is tried against every key.
	noKid := signRaw(t, jwt.SigningMethodEdDSA, newKey.key, "", jwt.MapClaims{
		"iss": DefaultIssuer, "aud": DefaultAudience, "tid": "t1", "exp": time.Now().Add(time.Hour).Unix(),
	})
	if _, err := v.Verify(noKid, "t1"); err != nil {
		t.Errorf("no kid: %v", err)
	}
	// The t2 key verifies t2 tokens only, even when it signs a t1 token.
	if _, err := v.Verify(mustIssue(t, t2Key, Claims{Tenant: "t2"}), "t2"); err != nil {
		t.Errorf("t2 key for t2: %v", err)
	}
	if _, err := v.Verify(mustIssue(t, t2Key, Claims{Tenant: "t1"}), "t1"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("t2 key for t1: err = %v, want ErrUnknownKey", err)
	}
	if _, err := Merge(oldKey.KeySet(), oldKey.KeySet()); err == nil {
		t.Error("Merge accepted a duplicate kid")
	}
}

func TestSignerPEMRoundTrip(t *testing.T) {
	s := newSigner(t)
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := s.SavePEM(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o", st.Mode().Perm())
	}
	if err := s.SavePEM(path); err == nil {
		t.Error("SavePEM overwrote an existing key")
	}
	loaded, err := LoadSignerPEM(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.KeyID() != s.KeyID() || !loaded.PublicKey().Equal(s.PublicKey()) {
		t.Error("loaded key differs")
	}
	if _, err := (&Verifier{Keys: s.KeySet()}).Verify(mustIssue(t, loaded, Claims{Tenant: "t"}), "t"); err != nil {
		t.Error(err)
	}
	for name, data := range map[string]string{
		"empty":     "",
		"not pem":   "hello",
		"wrong pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"bad der":   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		if _, err := ParseSignerPEM([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := LoadSignerPEM(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("missing file loaded")
	}
	if _, err := NewSigner(ed25519.PrivateKey{1, 2}, ""); err == nil {
		t.Error("short key accepted")
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if ns, _ := NewSigner(priv, "my-kid"); ns.KeyID() != "my-kid" {
		t.Error("explicit kid ignored")
	}
}

// PeekClaims reads a token's claims without verifying it: an issued token
// (or one with a bad signature) gives its tenant and times; an opaque or
// malformed token gives nothing.
func TestPeekClaims(t *testing.T) {
	sg, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(1800000000, 0)
	tok, err := sg.Issue(Claims{Tenant: "t1", Subject: "s", IssuedAt: time.Unix(1700000000, 0), ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := PeekClaims(tok[:len(tok)-2] + "AA") // signature spoiled: still read
	if !ok || c.Tenant != "t1" || c.Subject != "s" || !c.ExpiresAt.Equal(exp) || c.IssuedAt.Unix() != 1700000000 || c.Audience != DefaultAudience {
		t.Fatalf("PeekClaims = %+v, %v", c, ok)
	}
	for _, bad := range []string{"", "dev", "a.!!!.c", "a.b"} {
		if c, ok := PeekClaims(bad); ok {
			t.Errorf("PeekClaims(%q) = %+v, true", bad, c)
		}
	}
}
