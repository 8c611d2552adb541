package auth

import (
	"strings"
	"testing"

	"github.com/felixmq/felix/broker"
)

// ConfineToTenant promises a result that grants nothing outside the tenant.
// That holds only for a tenant that is a name: one holding '*' would be
// written into the confined patterns as a wildcard (stream:*/orders/*
// stayed stream:*/orders/*, every tenant's), one holding '/' or ':' would
// shift the path's segments. Such a tenant confines to nothing.
func TestConfineToTenantRefusesTenantThatIsNotAName(t *testing.T) {
	perms := []string{"*:*", "admin:tenant:*", "stream.subscribe:stream:*/orders/*", "cache.read:cache:*/*", "stream.publish:stream:*/*"}
	others := []string{TenantResource("t2"), StreamResource("t2", "orders", "x"), StreamResource("a", "b", "x"), CacheResource("t2", "n", "c")}
	for _, tenant := range []string{"*", "t*", "*1", "a/b", "t1/*", "t:1", ""} {
		got := ConfineToTenant(perms, tenant)
		if len(got) == 0 {
			continue
		}
		m, err := NewMatcher(got)
		if err != nil {
			t.Fatal(err)
		}
		leak := ""
		for _, res := range others {
			for _, a := range Actions {
				if leak == "" && m.Allows(a, res) {
					leak = a + " on " + res
				}
			}
		}
		t.Errorf("ConfineToTenant(%q) = %v, want nothing for a tenant that is not a name (allows %q)", tenant, got, leak)
	}
	// A name keeps working, with the characters names may hold.
	if got := ConfineToTenant([]string{"stream.subscribe:stream:*/orders/*"}, "t-1.é>"); len(got) != 1 || got[0] != "stream.subscribe:stream:t-1.é>/orders/*" {
		t.Errorf("valid tenant: %v", got)
	}
}

// ValidName is the broker's name rule (broker.ValidateName), which auth
// cannot import: the two must agree on every name.
func TestValidNameAgreesWithBroker(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen)
	for _, s := range []string{
		"", "t1", "T1", "orders-2", "a.b", ">", "é", "ｔ1", long, long + "x",
		"*", "t*", "a/b", "a:b", "a b", "a\u00a0b", "a\u2028b", "a\tb", "a\x00b", "a\x7fb", "\xff", "a\u0085b",
	} {
		if got, want := ValidName(s), broker.ValidateName("tenant", s) == nil; got != want {
			t.Errorf("ValidName(%q) = %v, broker.ValidateName accepts: %v", s, got, want)
		}
	}
}
