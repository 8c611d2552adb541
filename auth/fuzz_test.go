package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// FuzzParseToken: Verify never panics on arbitrary input and accepts only
// tokens that carry a valid signature of the trusted key.
func FuzzParseToken(f *testing.F) {
	s, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Now = func() time.Time { return now }
	valid, err := s.Issue(Claims{Subject: "a", Tenant: "t", Perms: []string{"*:*"}})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + b64([]byte(`{"tid":"t","exp":1e300}`)) + "." + parts[2])
	f.Add(b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(b64([]byte(`{"alg":"EdDSA","kid":[]}`)) + "." + parts[1] + "." + parts[2])
	v := &Verifier{Keys: s.KeySet(), Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token, "t")
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a TokenError", err)
			}
			if len(token) > 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("error text contains the token")
			}
			return
		}
		// Accepted: the signed part must be exactly what our key signed.
		p := strings.Split(token, ".")
		if len(p) != 3 || p[0]+"."+p[1] != parts[0]+"."+parts[1] {
			t.Fatalf("accepted a token the key did not sign: %q", token)
		}
		if c.Tenant != "t" {
			t.Fatalf("accepted tenant %q", c.Tenant)
		}
	})
}

// FuzzMatcher: NewMatcher and Allows never panic, and a valid permission
// without '*' allows exactly its own action on exactly its own resource
// (among resources of the same kind).
func FuzzMatcher(f *testing.F) {
	for _, seed := range []struct{ perm, action, resource string }{
		{"stream.publish:stream:t/n/s", "stream.publish", "stream:t/n/s"},
		{"stream.publish:stream:t/*/s", "stream.publish", "stream:t/x/y/s"},
		{"tenant.manage:tenant:t", "cache.read", "cache:t/n/c"},
		{"*:*", "admin", "cluster"},
		{"ns.manage:namespace:t/n", "queue.consume", "stream:t/n/q"},
		{"a:b:c", "a", "b:c"},
		{"cache.*:cache:**/x", "cache.read", "cache:a/x"},
	} {
		f.Add(seed.perm, seed.action, seed.resource)
	}
	f.Fuzz(func(t *testing.T, perm, action, resource string) {
		m, err := NewMatcher([]string{perm})
		if err != nil {
			if m != nil {
				t.Fatal("matcher returned with an error")
			}
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a PermissionError", err)
			}
			return
		}
		m.Allows(action, resource)
		if strings.Contains(perm, "*") {
			return
		}
		p, _ := ParsePermission(perm)
		if !m.Allows(p.Action, p.Resource) {
			t.Fatalf("%q does not allow itself", perm)
		}
		if !strings.HasPrefix(resource, kindOf(p.Resource)) {
			return // inheritance reaches other kinds; compare within p's kind
		}
		if got, want := m.Allows(p.Action, resource), resource == p.Resource; got != want {
			t.Fatalf("%q: Allows(%q, %q) = %v, want %v", perm, p.Action, resource, got, want)
		}
		if action != p.Action && m.Allows(action, p.Resource) && !strings.HasPrefix(p.Action, "*") {
			// Another action on the same resource is allowed only through
			// inheritance, which never targets p's own kind.
			t.Fatalf("%q allows %q on its own resource", perm, action)
		}
	})
}

func kindOf(resource string) string {
	k, _, ok := strings.Cut(resource, ":")
	if !ok {
		return resource
	}
	return k + ":"
}
