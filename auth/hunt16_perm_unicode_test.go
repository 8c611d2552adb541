package auth

import (
	"errors"
	"strings"
	"testing"
)

// docs/security.md: a permission string "contains whitespace or control
// characters" is refused with a clear error. Names can never hold them
// (the broker's name rules refuse Unicode whitespace and control
// characters), so such a permission can grant nothing: accepting it hides
// the typo (a no-break space pasted from a web page) behind a token that
// silently never works. Not UTF-8 is refused too: a token's JSON would
// carry U+FFFD instead, another permission than the one checked.
func TestPermissionRefusesUnicodeWhitespaceAndControls(t *testing.T) {
	for _, c := range []struct{ perm, reason string }{
		{"stream.publish:stream:acme/orders/*\u00a0", "whitespace or control"}, // no-break space
		{"stream.publish:stream:acme/or\u2003ders/s", "whitespace or control"}, // em space
		{"stream.publish:stream:acme/orders/s\u2028", "whitespace or control"}, // line separator
		{"stream.publish:stream:acme/orders/\u0085s", "whitespace or control"}, // NEL, a C1 control
		{"cache.read:cache:acme/web/\u3000", "whitespace or control"},          // ideographic space
		{"stream.publish:stream:acme/orders/\xff", "not UTF-8"},
	} {
		_, err := ParsePermission(c.perm)
		var pe *PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("ParsePermission(%q): err = %v, want a PermissionError with %q", c.perm, err, c.reason)
		}
	}
	// Other non-ASCII letters stay valid, as in names.
	for _, ok := range []string{"stream.publish:stream:acmé/commandes/créées", "cache.read:cache:東京/ns/キャッシュ"} {
		if _, err := ParsePermission(ok); err != nil {
			t.Errorf("ParsePermission(%q): %v", ok, err)
		}
	}
}
