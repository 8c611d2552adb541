package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "stream:t/ns/s", true},
		{"a", "a", true},
		{"a", "ab", false},
		{"ab", "a", false},
		{"a*", "a", true},
		{"a*", "abc/def", true},
		{"*c", "abc", true},
		{"*c", "abd", false},
		{"a*c", "ac", true},
		{"a*c", "a/b/c", true},
		{"a*c", "a/b/cd", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"**", "x", true},
		{"stream:t1/*/orders", "stream:t1/ns/orders", true},
		{"stream:t1/*/orders", "stream:t1/a/b/orders", true}, // '*' crosses '/'
		{"stream:t1/*/orders", "stream:t1/ns/orders2", false},
		{"*aaa*", strings.Repeat("a", 50) + "b", true},
		{"a*a*a*a*a*b", strings.Repeat("a", 100), false},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestMatcherGlobsAndInheritance(t *testing.T) {
	type check struct {
		action, resource string
		want             bool
	}
	for _, c := range []struct {
		name   string
		perms  []string
		checks []check
	}{
		{"exact", []string{"stream.publish:stream:t1/ns/orders"}, []check{
			{ActionStreamPublish, StreamResource("t1", "ns", "orders"), true},
			{ActionStreamSubscribe, StreamResource("t1", "ns", "orders"), false},
			{ActionStreamPublish, StreamResource("t1", "ns", "orders2"), false},
			{ActionStreamPublish, StreamResource("t2", "ns", "orders"), false},
		}},
		{"stream glob", []string{"stream.subscribe:stream:t1/*/*"}, []check{
			{ActionStreamSubscribe, StreamResource("t1", "a", "b"), true},
			{ActionStreamSubscribe, "stream:t1/a/b/c", true}, // '*' matches '/'
			{ActionStreamSubscribe, StreamResource("t10", "a", "b"), false},
			{ActionStreamPublish, StreamResource("t1", "a", "b"), false},
			{ActionCacheRead, CacheResource("t1", "a", "b"), false},
		}},
		{"name prefix", []string{"cache.read:cache:t1/ns/user-*"}, []check{
			{ActionCacheRead, CacheResource("t1", "ns", "user-1"), true},
			{ActionCacheRead, CacheResource("t1", "ns", "user-"), true},
			{ActionCacheRead, CacheResource("t1", "ns", "admin"), false},
			{ActionCacheWrite, CacheResource("t1", "ns", "user-1"), false},
		}},
		{"everything", []string{"*:*"}, []check{
			{ActionAdmin, ClusterResource, true},
			{ActionQueueConsume, StreamResource("x", "y", "z"), true},
		}},
		{"any action on one stream", []string{"*:stream:t1/ns/s"}, []check{
			{ActionStreamPublish, StreamResource("t1", "ns", "s"), true},
			{ActionQueueConsume, StreamResource("t1", "ns", "s"), true},
			{ActionCacheRead, CacheResource("t1", "ns", "s"), false},
		}},
		{"action glob", []string{"cache.*:cache:t1/*"}, []check{
			{ActionCacheRead, CacheResource("t1", "ns", "c"), true},
			{ActionCacheWrite, CacheResource("t1", "ns", "c"), true},
			{ActionStreamPublish, CacheResource("t1", "ns", "c"), false},
		}},
		{"tenant.manage", []string{"tenant.manage:tenant:t1"}, []check{
			{ActionTenantManage, TenantResource("t1"), true},
			{ActionNamespaceManage, NamespaceResource("t1", "ns"), true},
			{ActionStreamManage, StreamResource("t1", "ns", "s"), true},
			{ActionStreamPublish, StreamResource("t1", "ns", "s"), true},
			{ActionStreamSubscribe, StreamResource("t1", "ns", "s"), true},
			{ActionQueueConsume, StreamResource("t1", "ns", "s"), true},
			{ActionCacheManage, CacheResource("t1", "ns", "c"), true},
			{ActionCacheRead, CacheResource("t1", "ns", "c"), true},
			{ActionCacheWrite, CacheResource("t1", "ns", "c"), true},
			{ActionStreamPublish, StreamResource("t2", "ns", "s"), false},
			{ActionStreamPublish, StreamResource("t10", "ns", "s"), false},
			{ActionTenantManage, TenantResource("t2"), false},
			{ActionRBACView, TenantResource("t1"), false},
			{ActionAdmin, TenantResource("t1"), false},
		}},
		{"ns.manage", []string{"ns.manage:namespace:t1/orders"}, []check{
			{ActionNamespaceManage, NamespaceResource("t1", "orders"), true},
			{ActionStreamPublish, StreamResource("t1", "orders", "s"), true},
			{ActionQueueConsume, StreamResource("t1", "orders", "s"), true},
			{ActionCacheWrite, CacheResource("t1", "orders", "c"), true},
			{ActionStreamPublish, StreamResource("t1", "billing", "s"), false},
			{ActionStreamPublish, StreamResource("t1", "orders2", "s"), false},
			{ActionNamespaceManage, NamespaceResource("t1", "billing"), false},
			{ActionTenantManage, TenantResource("t1"), false},
		}},
		{"ns.manage all namespaces", []string{"ns.manage:namespace:t1/*"}, []check{
			{ActionStreamSubscribe, StreamResource("t1", "any", "s"), true},
			{ActionCacheRead, CacheResource("t1", "any", "c"), true},
			{ActionCacheRead, CacheResource("t2", "any", "c"), false},
		}},
		{"wildcard action inherits", []string{"*:tenant:t1"}, []check{
			{ActionAdmin, TenantResource("t1"), true},
			{ActionStreamPublish, StreamResource("t1", "a", "b"), true},
			{ActionStreamPublish, StreamResource("t2", "a", "b"), false},
		}},
		{"tenant.manage on every tenant", []string{"tenant.manage:*"}, []check{
			{ActionCacheRead, CacheResource("x", "y", "z"), true},
		}},
		{"admin", []string{"admin:cluster"}, []check{
			{ActionAdmin, ClusterResource, true},
			{ActionAdmin, TenantResource("t1"), false},
			{ActionStreamPublish, StreamResource("t1", "a", "b"), false},
		}},
		{"none", nil, []check{
			{ActionStreamPublish, StreamResource("t1", "a", "b"), false},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewMatcher(c.perms)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range c.checks {
				if got := m.Allows(ch.action, ch.resource); got != ch.want {
					t.Errorf("Allows(%q, %q) = %v, want %v (perms %v)", ch.action, ch.resource, got, ch.want, m.Permissions())
				}
			}
		})
	}
	var nilMatcher *Matcher
	if nilMatcher.Allows(ActionStreamPublish, "stream:a/b/c") {
		t.Error("nil matcher allowed")
	}
}

func TestInvalidPermissions(t *testing.T) {
	for _, c := range []struct{ perm, reason string }{
		{"", "empty"},
		{"stream.publish", "want action:resource"},
		{":stream:t/n/s", "empty action"},
		{"stream.publish:", "empty resource"},
		{"stream.fly:stream:t/n/s", "unknown action"},
		{"foo*:stream:t/n/s", "unknown action"},
		{"stream.publish:queue:t/n/s", "resource must be"},
		{"stream.publish:stream:", "empty resource path"},
		{"stream.publish:stream:t/n", "needs 3 segment(s), has 2"},
		{"stream.publish:stream:t/n/s/x", "needs 3 segment(s), has 4"},
		{"tenant.manage:tenant:t/x", "needs 1 segment(s)"},
		{"stream.publish:stream:t//s", "empty segment"},
		{"stream.publish:stream:t/n/s/", "empty segment"},
		{"stream.publish:stream:t/n:x/s", "':' in resource path"},
		{"stream.publish:stream:t/n/ s", "whitespace or control"},
		{"stream.publish:stream:t/n/s\n", "whitespace or control"},
		{"stream.publish:stream:" + strings.Repeat("a", MaxPermissionLen), "longer than"},
		{"stream.publish:*x", "resource must be"},
	} {
		_, err := NewMatcher([]string{"stream.publish:stream:t/n/ok", c.perm})
		var pe *PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("NewMatcher(%q): err = %v, want a PermissionError with %q", c.perm, err, c.reason)
		}
	}
	for _, ok := range []string{
		"*:*", "stream.publish:*", "admin:cluster", "admin:tenant:t1", "stream.*:stream:t1/*",
		"queue.consume:stream:t/n/s", "ns.manage:namespace:t/*", "rbac.view:tenant:t",
	} {
		if _, err := ParsePermission(ok); err != nil {
			t.Errorf("ParsePermission(%q): %v", ok, err)
		}
	}
}

func TestExpand(t *testing.T) {
	got, err := Expand([]string{"ns.manage:namespace:t1/ns", "stream.publish:stream:t1/ns/*"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ns.manage:namespace:t1/ns", "stream.publish:stream:t1/ns/*",
		"stream.manage:stream:t1/ns/*", "stream.subscribe:stream:t1/ns/*", "queue.consume:stream:t1/ns/*",
		"cache.manage:cache:t1/ns/*", "cache.read:cache:t1/ns/*", "cache.write:cache:t1/ns/*",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Expand = %v\nwant     %v", got, want)
	}
	if _, err := Expand([]string{"bogus"}); err == nil {
		t.Error("Expand accepted an invalid permission")
	}
}

// The server package's action strings are ours.
func TestActionStrings(t *testing.T) {
	for _, a := range []string{"stream.publish", "stream.subscribe", "cache.read", "cache.write", "queue.consume"} {
		if !slices.Contains(Actions, a) {
			t.Errorf("%s missing from Actions", a)
		}
	}
	if StreamResource("t", "n", "s") != "stream:t/n/s" || CacheResource("t", "n", "c") != "cache:t/n/c" ||
		TenantResource("t") != "tenant:t" || NamespaceResource("t", "n") != "namespace:t/n" {
		t.Error("resource helpers")
	}
}
