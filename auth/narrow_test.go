package auth

import (
	"slices"
	"testing"
)

func TestNarrow(t *testing.T) {
	perms := []string{"stream.publish:stream:t1/*/*", "cache.read:cache:t1/ns/c", "ns.manage:namespace:t1/billing"}
	for _, c := range []struct {
		name               string
		actions, resources []string
		want               []string
	}{
		{"no restriction", nil, nil, []string{
			"stream.publish:stream:t1/*/*", "cache.read:cache:t1/ns/c", "ns.manage:namespace:t1/billing",
			"stream.manage:stream:t1/billing/*", "stream.publish:stream:t1/billing/*", "stream.subscribe:stream:t1/billing/*",
			"queue.consume:stream:t1/billing/*", "cache.manage:cache:t1/billing/*", "cache.read:cache:t1/billing/*",
			"cache.write:cache:t1/billing/*",
		}},
		{"actions", []string{"cache.read"}, nil, []string{"cache.read:cache:t1/ns/c", "cache.read:cache:t1/billing/*"}},
		{"narrower resource", []string{"stream.publish"}, []string{"stream:t1/orders/*"}, []string{"stream.publish:stream:t1/orders/*"}},
		{"wider resource", []string{"cache.read"}, []string{"cache:t1/*"}, []string{"cache.read:cache:t1/ns/c", "cache.read:cache:t1/billing/*"}},
		{"disjoint", nil, []string{"stream:t2/*"}, nil},
		{"unknown action", []string{"stream.fly"}, nil, nil},
	} {
		got, err := Narrow(perms, c.actions, c.resources)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
		}
	}
}

func TestConfineToTenant(t *testing.T) {
	got := ConfineToTenant([]string{
		"*:*", "admin:cluster", "admin:tenant:t1", "admin:tenant:t10", "admin:tenant:*",
		"stream.publish:stream:t2/*/*", "stream.publish:stream:t1/*/*", "stream.subscribe:stream:*/orders/*",
		"cache.read:cache:t*", "ns.manage:namespace:t1*/x", "cache.write:cache:*x/y/z", "bogus",
	}, "t1")
	want := []string{
		"*:tenant:t1", "*:namespace:t1/*", "*:stream:t1/*", "*:cache:t1/*",
		"admin:tenant:t1", "stream.publish:stream:t1/*/*", "stream.subscribe:stream:t1/orders/*",
		"cache.read:cache:t1/*", "ns.manage:namespace:t1/x",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	for _, p := range got {
		m, err := NewMatcher([]string{p})
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range []string{ClusterResource, TenantResource("t10"), StreamResource("t2", "a", "b"), StreamResource("t10", "a", "b"), CacheResource("x", "y", "z")} {
			for _, a := range Actions {
				if m.Allows(a, res) {
					t.Errorf("%s allows %s on %s", p, a, res)
				}
			}
		}
	}
}
