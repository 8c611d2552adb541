package oidc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// An RSA modulus in a provider's JWKS is bounded above as well as below:
// a signature check costs more than the square of its size (3.7 s at
// 262144 bits here), and a JWKS may be a megabyte, so one tenant's provider publishing a modulus of megabits
// would make every token naming it (which anyone can send, with a
// signature as long as the modulus) cost minutes of CPU. Moduli over
// MaxRSABits are skipped as unusable, like those under MinRSABits.
func TestParseJWKSRefusesHugeRSAModulus(t *testing.T) {
	for _, tc := range []struct {
		bits int
		want int
	}{{MaxRSABits, 1}, {MaxRSABits + 8, 0}, {1 << 20, 0}} {
		n := bytes.Repeat([]byte{0xff}, tc.bits/8) // odd, of exactly tc.bits bits
		doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "big", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB",
		}}})
		keys, _, err := parseJWKS(doc, DefaultMaxKeysPerJWKS)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != tc.want {
			t.Errorf("RSA modulus of %d bits: %d usable keys, want %d", tc.bits, len(keys), tc.want)
		}
	}
}

// An upstream token is bounded in length before it is parsed (it was
// parsed twice, whatever its size: an HTTP header may hold a megabyte), as
// Felix tokens are by auth.Verifier.
func TestVerifyBoundsTokenLength(t *testing.T) {
	idp := oidctest.New(t)
	clock := testclock.New()
	v := &Verifier{Now: clock.Now}
	c := idp.Claims(clock.Now(), "alice")
	c["pad"] = strings.Repeat("x", DefaultMaxTokenBytes)
	big := idp.Token(t, oidctest.DefaultKID, c)
	_, err := v.Verify(context.Background(), big, []IssuerConfig{issuerConfig(idp)})
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("token of %d bytes: err = %v, want ErrInvalidToken too large", len(big), err)
	}
	v2 := &Verifier{Now: clock.Now, MaxTokenBytes: len(big)}
	if _, err := v2.Verify(context.Background(), big, []IssuerConfig{issuerConfig(idp)}); err != nil {
		t.Fatalf("token within MaxTokenBytes: %v", err)
	}
}
