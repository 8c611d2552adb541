package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/felixmq/felix/internal/testclock"
)

// signJSON signs header and payload, raw JSON texts as given (which
// encoding/json would not write: duplicated names, case variants), with
// key.
func signJSON(key ed25519.PrivateKey, header, payload string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	return input + "." + enc.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// claimsJSON is a valid payload for tenant t1 at now, followed by extra
// members (each a `"name":value` text).
func claimsJSON(exp int64, extra string) string {
	return fmt.Sprintf(`{"iss":"felix-auth","aud":"felix-broker","sub":"alice","tid":"t1","exp":%d,"perms":["cache.read:cache:t1/*/*"]%s}`, exp, extra)
}

// Claim names are matched exactly, as the reference (serde) does: a member
// whose name differs from a claim's only in case, ASCII or Unicode
// (encoding/json folds "ſ" to "s" and "K" to "k"), is an unknown claim,
// ignored, and never overrides the claim. Before, encoding/json's
// case-insensitive match let the last of "tid" and "TID" win, so one
// signed token named tenant t2 here and t1 for the reference.
func TestVerifyClaimNamesAreExact(t *testing.T) {
	s, v, exp, header := handMadeTokens(t)

	for _, tc := range []struct {
		name, extra string
		tenant      string // verified for
		sub         string
		perms       []string
	}{
		{"TID", `,"TID":"t2"`, "t1", "alice", []string{"cache.read:cache:t1/*/*"}},
		{"Tid", `,"Tid":"t2"`, "t1", "alice", []string{"cache.read:cache:t1/*/*"}},
		{"Perms", `,"Perms":["*:*"]`, "t1", "alice", []string{"cache.read:cache:t1/*/*"}},
		{"SUB", `,"SUB":"mallory"`, "t1", "alice", []string{"cache.read:cache:t1/*/*"}},
		{"long s", `,"ſub":"mallory"`, "t1", "alice", []string{"cache.read:cache:t1/*/*"}},
		{"unknown extra claims", `,"jti":"j1","custom":{"a":[1,{"b":null}]}`, "t1", "alice", []string{"cache.read:cache:t1/*/*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signJSON(s.key, header, claimsJSON(exp, tc.extra))
			c, err := v.Verify(tok, tc.tenant)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Tenant != tc.tenant || c.Subject != tc.sub || !slices.Equal(c.Perms, tc.perms) {
				t.Errorf("claims tenant %q sub %q perms %q, want %q %q %q", c.Tenant, c.Subject, c.Perms, tc.tenant, tc.sub, tc.perms)
			}
			if _, err := v.Verify(tok, "t2"); !errors.Is(err, ErrWrongTenant) {
				t.Errorf("Verify for t2: err = %v, want %v", err, ErrWrongTenant)
			}
			if p, ok := PeekClaims(tok); !ok || p.Tenant != "t1" || p.Subject != "alice" {
				t.Errorf("PeekClaims = %+v, %v; want tenant t1, subject alice", p, ok)
			}
		})
	}

	// Only a case variant: there is no tid claim.
	onlyUpper := signJSON(s.key, header, fmt.Sprintf(`{"iss":"felix-auth","aud":"felix-broker","TID":"t1","exp":%d}`, exp))
	if _, err := v.Verify(onlyUpper, "t1"); !errors.Is(err, ErrWrongTenant) {
		t.Errorf(`only "TID": err = %v, want %v`, err, ErrWrongTenant)
	}
	onlyUpperExp := signJSON(s.key, header, `{"iss":"felix-auth","aud":"felix-broker","tid":"t1","EXP":9999999999}`)
	if _, err := v.Verify(onlyUpperExp, "t1"); !errors.Is(err, ErrMalformed) {
		t.Errorf(`only "EXP": err = %v, want %v (no exp)`, err, ErrMalformed)
	}
}

// A token whose payload (or header) names a member twice, exactly (after
// JSON unescaping), is malformed: encoding/json would keep the last, other
// verifiers keep the first or refuse it. Also in nested objects.
func TestVerifyRefusesDuplicateNames(t *testing.T) {
	s, v, exp, header := handMadeTokens(t)

	for _, tc := range []struct{ name, header, payload string }{
		{"tid twice", header, claimsJSON(exp, `,"tid":"t2"`)},
		{"tid twice, same value", header, claimsJSON(exp, `,"tid":"t1"`)},
		{"tid escaped", header, claimsJSON(exp, `,"t\u0069d":"t2"`)},
		{"perms twice", header, claimsJSON(exp, `,"perms":["*:*"]`)},
		{"exp twice", header, claimsJSON(exp, `,"exp":9999999999`)},
		{"unknown claim twice", header, claimsJSON(exp, `,"jti":"a","jti":"b"`)},
		{"nested duplicate", header, claimsJSON(exp, `,"custom":{"a":1,"a":2}`)},
		{"kid twice in header", `{"alg":"EdDSA","kid":"other","kid":"` + s.KeyID() + `"}`, claimsJSON(exp, "")},
		{"alg twice in header", `{"alg":"none","alg":"EdDSA","kid":"` + s.KeyID() + `"}`, claimsJSON(exp, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signJSON(s.key, tc.header, tc.payload)
			for _, tenant := range []string{"t1", "t2"} {
				if _, err := v.Verify(tok, tenant); !errors.Is(err, ErrMalformed) {
					t.Errorf("Verify for %s: err = %v, want %v", tenant, err, ErrMalformed)
				}
			}
			if c, ok := PeekClaims(tok); ok {
				t.Errorf("PeekClaims = %+v, true; want not ok", c)
			}
		})
	}
	// The same token without the duplicate verifies.
	if _, err := v.Verify(signJSON(s.key, header, claimsJSON(exp, "")), "t1"); err != nil {
		t.Fatalf("control token: %v", err)
	}
}

// FuzzCheckUniqueNames: CheckUniqueNames never panics, accepts only valid
// JSON, and agrees with encoding/json on what a value is.
func FuzzCheckUniqueNames(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `null`, `{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`,
		`{"a":1} {}`, `{"a":[1,2,{"b":{}}],"b":"x"}`, `"str"`, `{"t\u0069d":1,"tid":2}`, `[[[[`, `1e400`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckUniqueNames(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err != nil && !errors.Is(err, ErrDuplicateName) && json.Valid(data) && len(data) < 1000 {
			t.Fatalf("refused valid JSON %q without a duplicate: %v", data, err)
		}
	})
}

// handMadeTokens returns a signer, a verifier of its keys on a test
// clock, the exp of a token issued now, and the JSON header of a token
// signed by it, for tests that write tokens' JSON by hand.
func handMadeTokens(t *testing.T) (s *Signer, v *Verifier, exp int64, header string) {
	clock := testclock.New()
	s = newSigner(t)
	v = &Verifier{Keys: s.KeySet(), Now: clock.Now}
	return s, v, clock.Now().Add(DefaultTTL).Unix(), `{"alg":"EdDSA","kid":"` + s.KeyID() + `"}`
}
