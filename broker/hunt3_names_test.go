package broker

import (
	"errors"
	"strings"
	"testing"

	"github.com/felixmq/felix/auth"
)

func TestValidateNameRefuses(t *testing.T) {
	cases := []struct {
		kind, name string
		want       string // in the error, after the kind and the name
	}{
		{"stream", "", "empty stream"},
		{"tenant", strings.Repeat("a", 256), "tenant longer than 255 bytes"},
		{"namespace", "a\xffb", "namespace is not UTF-8"},
		{"stream", "a/b", `stream "a/b" contains '/' (the path separator) at byte 1`},
		{"stream", "a*", `stream "a*" contains '*' (the permission wildcard) at byte 1`},
		{"cache", "*", `cache "*" contains '*' (the permission wildcard) at byte 0`},
		{"namespace", "ns:x", `namespace "ns:x" contains ':' (the permission separator) at byte 2`},
		{"group", "my group", `group "my group" contains whitespace U+0020 at byte 2`},
		{"stream", "a\tb", "control character U+0009 at byte 1"},
		{"stream", "a\nb", "control character U+000A"},
		{"stream", "a\rb", "control character U+000D"},
		{"stream", "a\x00b", "control character U+0000"},
		{"stream", "a\x1bb", "control character U+001B"},
		{"stream", "a\x7fb", "control character U+007F"},
		{"stream", "a\u0085b", "control character U+0085"}, // NEL: control and space
		{"stream", "a\u009fb", "control character U+009F"},
		{"stream", "a\u00a0b", "whitespace U+00A0 at byte 1"},
		{"stream", "a\u2003b", "whitespace U+2003"},
		{"stream", "a\u2028b", "whitespace U+2028"},
		{"stream", "a\u3000b", "whitespace U+3000"},
		{"tenant", " lead", "whitespace U+0020 at byte 0"},
		{"tenant", "trail ", "whitespace U+0020 at byte 5"},
		{"stream", "é*", "'*' (the permission wildcard) at byte 2"}, // byte offset, not rune index
	}
	for _, c := range cases {
		err := ValidateName(c.kind, c.name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q, %q) = %v, want ErrInvalidName", c.kind, c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateName(%q, %q) = %q, want it to contain %q", c.kind, c.name, err, c.want)
		}
	}
}

func TestValidateNameAccepts(t *testing.T) {
	for _, name := range []string{
		"a", "orders", "orders.v2", "order-1", "under_score", "a@b", "#tag", "a+b", "a=b",
		"a?b", "[x]", "~", "Ünïcödé", "заказы", "注文", "🚀",
		strings.Repeat("a", 255), strings.Repeat("é", 127),
	} {
		if err := ValidateName("stream", name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
}

// TestValidNamesGrantExactly checks the point of the name rules: for every
// valid name, the exact permission naming it parses and grants that
// stream, cache and namespace and no other.
func TestValidNamesGrantExactly(t *testing.T) {
	for _, name := range []string{"orders", "a?b", "[x]", "注文", "🚀", "x.y-z_1", strings.Repeat("n", 255)} {
		if err := ValidateName("stream", name); err != nil {
			t.Fatal(err)
		}
		checkExactGrant(t, name)
	}
	// A name the rules now refuse would have been a wildcard grant.
	p, err := auth.ParsePermission("stream.publish:stream:t/ns/a*")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Allows("stream.publish", "stream:t/ns/ab") {
		t.Fatal("stream:t/ns/a* is expected to be a glob")
	}
	if ValidateName("stream", "a*") == nil {
		t.Fatal(`stream "a*" accepted`)
	}
}

func checkExactGrant(t *testing.T, name string) {
	t.Helper()
	for _, g := range []struct{ action, resource string }{
		{"stream.publish", "stream:t/ns/" + name},
		{"cache.read", "cache:t/ns/" + name},
		{"ns.manage", "namespace:t/" + name},
		{"tenant.manage", "tenant:" + name},
	} {
		p, err := auth.ParsePermission(g.action + ":" + g.resource)
		if err != nil {
			t.Fatalf("valid name %q: exact grant refused: %v", name, err)
		}
		if !p.Allows(g.action, g.resource) {
			t.Fatalf("valid name %q: %s does not allow itself", name, p)
		}
		for _, other := range []string{g.resource + "x", g.resource[:len(g.resource)-1], g.resource + "/x"} {
			if p.Allows(g.action, other) {
				t.Fatalf("valid name %q: exact grant %s also allows %q", name, p, other)
			}
		}
	}
}

// FuzzValidateName checks that whatever ValidateName accepts can be granted
// exactly.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"orders", "a*", "a:b", "a b", "a\tb", "注文", "a\u00a0b", "a\u200bb", "?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName("stream", name) != nil {
			return
		}
		checkExactGrant(t, name)
	})
}
