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
