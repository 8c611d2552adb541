package auth

import (
	"math/rand"
	"strings"
	"testing"
)

// What the token exchange issues never grants more than the grants it
// started from: for random grants (wildcards at and inside segments, '*'
// spanning '/', action patterns, inheritance), ConfineToTenant grants
// nothing the grants did not and nothing outside the tenant, and Narrow of
// that, for random requested actions and resources, grants nothing the
// grants did not, checked on every action and every resource of a
// universe of names that share prefixes (t1, t11).
func TestExchangeNarrowingNeverWidens(t *testing.T) {
	r := rand.New(rand.NewSource(19))
	segs := []string{"t1", "t2", "a", "b", "*", "t*", "*1", "a*", "x", "*/*", "t1*", "**"}
	kinds := []string{KindTenant, KindNamespace, KindStream, KindCache}
	acts := append([]string{"*", "stream.*", "*.manage", "cache.*", "*e"}, Actions...)
	resource := func() string {
		switch r.Intn(10) {
		case 0:
			return "*"
		case 1:
			return ClusterResource
		}
		path := make([]string, 1+r.Intn(3))
		for i := range path {
			path[i] = segs[r.Intn(len(segs))]
		}
		return kinds[r.Intn(len(kinds))] + ":" + strings.Join(path, "/")
	}
	names := []string{"t1", "t2", "a", "x", "t11"}
	universe := []string{ClusterResource}
	for _, a := range names {
		universe = append(universe, TenantResource(a))
		for _, b := range names {
			universe = append(universe, NamespaceResource(a, b))
			for _, c := range names {
				universe = append(universe, StreamResource(a, b, c), CacheResource(a, b, c))
			}
		}
	}
	tenantOf := func(res string) string {
		_, path, _ := strings.Cut(res, ":")
		first, _, _ := strings.Cut(path, "/")
		return first
	}
	for i := 0; i < 1500; i++ {
		var perms, actions, resources []string
		for range 1 + r.Intn(3) {
			perms = append(perms, acts[r.Intn(len(acts))]+":"+resource())
		}
		for range r.Intn(3) {
			actions = append(actions, acts[r.Intn(len(acts))])
		}
		for range r.Intn(3) {
			resources = append(resources, resource())
		}
		granted, err := NewMatcher(perms)
		if err != nil {
			continue // an invalid grant: the exchange drops it
		}
		tenant := names[r.Intn(len(names))]
		confined := ConfineToTenant(perms, tenant)
		narrowed, err := Narrow(confined, actions, resources)
		if err != nil {
			t.Fatal(err)
		}
		cm, err := NewMatcher(confined)
		if err != nil {
			t.Fatal(err)
		}
		nm, err := NewMatcher(narrowed)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range universe {
			for _, a := range Actions {
				switch {
				case cm.Allows(a, res) && (!granted.Allows(a, res) || tenantOf(res) != tenant):
					t.Fatalf("grants %v confined to %s = %v: allows %s on %s", perms, tenant, confined, a, res)
				case nm.Allows(a, res) && !cm.Allows(a, res):
					t.Fatalf("%v narrowed to %v %v = %v: allows %s on %s", confined, actions, resources, narrowed, a, res)
				}
			}
		}
	}
}
