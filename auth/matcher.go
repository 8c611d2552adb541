package auth

import "strings"

// Matcher answers whether a set of permissions allows an action on a
// resource. It is immutable and safe for concurrent use.
//
// Matching: a permission "A:R" allows (action, resource) when the pattern A
// matches action and the pattern R matches resource, '*' matching any run of
// characters ('/' included) and every other character itself; "*" alone
// matches everything. Inherited permissions (see Permission.implied and
// docs/security.md) are expanded when the Matcher is built.
type Matcher struct {
	exact map[Permission]struct{}
	globs []Permission
	all   []Permission
}

// NewMatcher parses perms ("action:resource" strings, see ParsePermission)
// and returns their matcher. Any invalid string fails the whole set.
func NewMatcher(perms []string) (*Matcher, error) {
	ps, err := parseAll(perms)
	if err != nil {
		return nil, err
	}
	m := &Matcher{exact: make(map[Permission]struct{}), all: ps}
	for _, p := range ps {
		if strings.Contains(p.Action, "*") || strings.Contains(p.Resource, "*") {
			m.globs = append(m.globs, p)
		} else {
			m.exact[p] = struct{}{}
		}
	}
	return m, nil
}

// Allows reports whether the permissions allow action on resource. A nil
// Matcher allows nothing.
func (m *Matcher) Allows(action, resource string) bool {
	if m == nil {
		return false
	}
	if _, ok := m.exact[Permission{Action: action, Resource: resource}]; ok {
		return true
	}
	for _, p := range m.globs {
		if p.Allows(action, resource) {
			return true
		}
	}
	return false
}

// Permissions returns the expanded permissions, given ones first.
func (m *Matcher) Permissions() []string {
	if m == nil {
		return nil
	}
	return permStrings(m.all)
}
