package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxNarrowPatterns bounds each of Narrow's lists (requested actions,
// resource patterns): the work is the product of the permissions and both
// lists, and the lists come from a client.
const MaxNarrowPatterns = 64

// ErrTooManyPatterns is wrapped by Narrow's error for a list longer than
// MaxNarrowPatterns.
var ErrTooManyPatterns = errors.New("too many requested patterns")

// Narrow restricts permissions to requested actions and resource patterns,
// as the token exchange does with a client's optional "requested" and
// "resources" lists. perms are expanded first (see Expand) so that an
// inherited permission can be requested. An empty list does not restrict.
//
// A permission is kept, narrowed, for every requested pattern it overlaps
// by containment: when the permission's pattern matches the requested
// pattern's text (the request is narrower) the request is kept, and when
// the request matches the permission's text (the permission is narrower)
// the permission is kept. So stream.publish:stream:t1/*/* narrowed to
// resources ["stream:t1/orders/*"] becomes stream.publish:stream:t1/orders/*.
// Invalid requested strings match nothing. A list longer than
// MaxNarrowPatterns is refused with an error wrapping ErrTooManyPatterns.
func Narrow(perms, actions, resources []string) ([]string, error) {
	if len(actions) > MaxNarrowPatterns || len(resources) > MaxNarrowPatterns {
		return nil, fmt.Errorf("auth: narrow: %w: %d actions and %d resources, at most %d each",
			ErrTooManyPatterns, len(actions), len(resources), MaxNarrowPatterns)
	}
	ps, err := parseAll(perms)
	if err != nil {
		return nil, err
	}
	seen := make(map[Permission]bool)
	var out []Permission
	for _, p := range ps {
		for _, a := range narrowTo(p.Action, actions) {
			for _, r := range narrowTo(p.Resource, resources) {
				q, err := ParsePermission(a + ":" + r)
				if err == nil && !seen[q] {
					seen[q] = true
					out = append(out, q)
				}
			}
		}
	}
	return permStrings(out), nil
}

// narrowTo returns the intersections of pattern with each of requested
// (pattern itself when requested is empty), where one contains the other,
// without duplicates.
func narrowTo(pattern string, requested []string) []string {
	if len(requested) == 0 {
		return []string{pattern}
	}
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, r := range requested {
		switch {
		case globMatch(pattern, r):
			add(r)
		case globMatch(r, pattern):
			add(pattern)
		}
	}
	return out
}

// ConfineToTenant cuts permissions down to what they grant inside tenant,
// as a token exchanged for tenant must carry: "cluster" resources are
// dropped, "*" becomes tenant:{t}, namespace:{t}/*, stream:{t}/* and
// cache:{t}/*, and a kind:path pattern is kept with its first segment
// fixed to the tenant when that is within the pattern (stream:*/orders/*
// becomes stream:{t}/orders/*; stream:{t}/*/* stays; stream:t2/*/* is
// dropped). The result never grants what perms did not; a pattern whose
// part inside the tenant cannot be written so is dropped. Invalid strings
// are dropped; the order is kept, without duplicates. A tenant that is not
// a valid name (see ValidName) confines to nothing: written into the
// patterns, its '*' would be a wildcard over tenants and its '/' or ':'
// would shift their segments.
func ConfineToTenant(perms []string, tenant string) []string {
	if !ValidName(tenant) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(action, resource string) {
		q, err := ParsePermission(action + ":" + resource)
		if s := q.String(); err == nil && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range perms {
		p, err := ParsePermission(s)
		if err != nil {
			continue
		}
		if p.Resource == "*" {
			add(p.Action, TenantResource(tenant))
			add(p.Action, KindNamespace+":"+tenant+"/*")
			add(p.Action, KindStream+":"+tenant+"/*")
			add(p.Action, KindCache+":"+tenant+"/*")
			continue
		}
		kind, path, ok := strings.Cut(p.Resource, ":")
		if !ok { // cluster
			continue
		}
		first, rest, more := strings.Cut(path, "/")
		var in string // the pattern's part inside the tenant
		switch {
		case kind == KindTenant:
			in = tenant
		case more:
			in = tenant + "/" + rest
		default: // one segment: it must cover every path of the tenant
			in = tenant + "/*"
		}
		// in (read as text) matching the pattern proves in's paths are
		// the pattern's; the first segment must admit the tenant.
		if globMatch(first, tenant) && globMatch(path, in) {
			add(p.Action, kind+":"+in)
		}
	}
	return out
}
