package auth

import (
	"errors"
	"strings"
	"testing"
)

// A token longer than the verifier's bound is refused before it is parsed,
// with ErrTokenTooLarge and its length and the bound (never the token); a
// token of exactly the bound is verified as usual.
func TestVerifyBoundsTokenLength(t *testing.T) {
	s := newSigner(t)
	tok := mustIssue(t, s, Claims{Subject: strings.Repeat("x", 2000), Tenant: "t1"})

	atLimit := &Verifier{Keys: s.KeySet(), MaxTokenBytes: len(tok)}
	if _, err := atLimit.Verify(tok, "t1"); err != nil {
		t.Fatalf("token of exactly MaxTokenBytes: %v", err)
	}
	under := &Verifier{Keys: s.KeySet(), MaxTokenBytes: len(tok) - 1}
	_, err := under.Verify(tok, "t1")
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, ErrTokenTooLarge) {
		t.Fatalf("token one byte over MaxTokenBytes: err = %v, want TokenError %v", err, ErrTokenTooLarge)
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "xxxx") {
		t.Errorf("error text contains the token: %v", err)
	}

	// The default bound: exactly DefaultMaxTokenBytes is parsed (and is
	// not a token), one byte more is not.
	v := &Verifier{Keys: s.KeySet()}
	if _, err := v.Verify(strings.Repeat("a", DefaultMaxTokenBytes), "t1"); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d bytes: err = %v, want %v", DefaultMaxTokenBytes, err, ErrMalformed)
	}
	_, err = v.Verify(strings.Repeat("a", DefaultMaxTokenBytes+1), "t1")
	if want := "auth: token too large: 16385 bytes, limit 16384"; !errors.Is(err, ErrTokenTooLarge) || err.Error() != want {
		t.Errorf("%d bytes: err = %v, want %q", DefaultMaxTokenBytes+1, err, want)
	}
}
