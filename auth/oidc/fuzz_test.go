package oidc

import (
	"testing"

	"github.com/felixmq/felix/internal/oidctest"
)

// FuzzParseJWKS: a provider's JWKS is input from outside; parsing it never
// panics and never keeps more than the bound of keys.
func FuzzParseJWKS(f *testing.F) {
	f.Add(oidctest.New(f).JWKS())
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"EC","kid":"e","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"e","crv":"P-521","x":"AA","y":"AA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, dropped, err := parseJWKS(data, 2)
		if err != nil {
			return
		}
		if len(keys) > 2 || dropped < 0 {
			t.Fatalf("%d keys kept, %d dropped, bound 2", len(keys), dropped)
		}
		for _, k := range keys {
			for _, alg := range supportedAlgs {
				k.fits(alg)
			}
		}
	})
}
