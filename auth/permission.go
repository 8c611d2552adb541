package auth

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPermissionLen bounds a permission string, in bytes.
const MaxPermissionLen = 1024

// Permission is a parsed, valid "action:resource" pattern.
type Permission struct {
	Action   string // a known action, or a pattern with '*' matching at least one
	Resource string // "*", "cluster" or "kind:path"
}

// String returns "action:resource".
func (p Permission) String() string { return p.Action + ":" + p.Resource }

// Allows reports whether p grants action on resource, without inheritance.
func (p Permission) Allows(action, resource string) bool {
	return globMatch(p.Action, action) && globMatch(p.Resource, resource)
}

// PermissionError explains why a permission string is invalid.
type PermissionError struct {
	Perm   string
	Reason string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("auth: invalid permission %q: %s", e.Perm, e.Reason)
}

// ParsePermission parses "action:resource", split on the first ':'.
//
// The action must be a known action (see Actions) or a pattern with '*'
// that matches at least one. The resource must be "*", "cluster", or
// "kind:path" with kind one of tenant, namespace, stream, cache, and path a
// non-empty '/'-separated list of non-empty segments without ':'; a path
// without '*' must have the kind's number of segments (1, 2, 3, 3). The
// string must be UTF-8 without (Unicode) whitespace or control characters
// anywhere.
func ParsePermission(s string) (Permission, error) {
	bad := func(format string, args ...any) (Permission, error) {
		shown := s
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		return Permission{}, &PermissionError{Perm: shown, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxPermissionLen {
		return bad("longer than %d bytes", MaxPermissionLen)
	}
	if !utf8.ValidString(s) {
		return bad("not UTF-8")
	}
	// Unicode whitespace and controls, as the broker's name rules: a
	// pattern holding one could match no name.
	for i, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return bad("whitespace or control character %U at byte %d", r, i)
		}
	}
	action, resource, ok := strings.Cut(s, ":")
	if !ok {
		return bad("want action:resource")
	}
	if action == "" {
		return bad("empty action")
	}
	if !validAction(action) {
		return bad("unknown action %q", action)
	}
	if reason := checkResource(resource); reason != "" {
		return bad("%s", reason)
	}
	return Permission{Action: action, Resource: resource}, nil
}

func validAction(action string) bool {
	if !strings.Contains(action, "*") {
		return slices.Contains(Actions, action)
	}
	for _, a := range Actions {
		if globMatch(action, a) {
			return true
		}
	}
	return false
}

// checkResource returns why resource is invalid, or "".
func checkResource(resource string) string {
	switch resource {
	case "":
		return "empty resource"
	case "*", ClusterResource:
		return ""
	}
	kind, path, ok := strings.Cut(resource, ":")
	want, known := kindSegments[kind]
	if !ok || !known {
		return "resource must be *, cluster, or tenant:, namespace:, stream: or cache: followed by a path"
	}
	if path == "" {
		return "empty resource path"
	}
	if strings.Contains(path, ":") {
		return "':' in resource path"
	}
	segs := strings.Split(path, "/")
	if slices.Contains(segs, "") {
		return "empty segment in resource path"
	}
	if !strings.Contains(path, "*") && len(segs) != want {
		return fmt.Sprintf("%s path needs %d segment(s), has %d", kind, want, len(segs))
	}
	return ""
}

// implied returns the permissions p grants by inheritance (not p itself):
// tenant.manage on tenant:{t} grants ns.manage on namespace:{t}/*, stream
// actions and queue.consume on stream:{t}/*/* and cache actions on
// cache:{t}/*/*; ns.manage on namespace:{t}/{ns} grants the stream, queue
// and cache actions on {t}/{ns}/*. A wildcard action or resource that
// covers tenant.manage (or ns.manage) inherits the same way.
func (p Permission) implied() []Permission {
	var out []Permission
	add := func(actions []string, kind, path string) {
		for _, a := range actions {
			out = append(out, Permission{Action: a, Resource: kind + ":" + path})
		}
	}
	if t, ok := p.scopePath(ActionTenantManage, KindTenant); ok {
		add([]string{ActionNamespaceManage}, KindNamespace, t+"/*")
		add(streamImplied, KindStream, t+"/*/*")
		add(cacheImplied, KindCache, t+"/*/*")
	}
	if ns, ok := p.scopePath(ActionNamespaceManage, KindNamespace); ok {
		add(streamImplied, KindStream, ns+"/*")
		add(cacheImplied, KindCache, ns+"/*")
	}
	return out
}

// scopePath returns the path pattern of p's resource when p grants action
// on resources of kind: the path itself for "kind:path", "*" for "*".
func (p Permission) scopePath(action, kind string) (string, bool) {
	if !globMatch(p.Action, action) {
		return "", false
	}
	if p.Resource == "*" {
		return "*", true
	}
	k, path, _ := strings.Cut(p.Resource, ":")
	return path, k == kind
}

// Expand parses perms and returns them followed by every permission they
// imply (see Matcher), without duplicates, in a stable order.
func Expand(perms []string) ([]string, error) {
	ps, err := parseAll(perms)
	if err != nil {
		return nil, err
	}
	return permStrings(ps), nil
}

func permStrings(ps []Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// parseAll parses perms and appends the implied permissions, deduplicated.
func parseAll(perms []string) ([]Permission, error) {
	seen := make(map[Permission]bool, len(perms))
	var out []Permission
	add := func(p Permission) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	var implied []Permission
	for _, s := range perms {
		p, err := ParsePermission(s)
		if err != nil {
			return nil, err
		}
		add(p)
		implied = append(implied, p.implied()...)
	}
	for _, p := range implied {
		add(p)
	}
	return out, nil
}
