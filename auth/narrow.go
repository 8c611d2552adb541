package auth

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
// Invalid requested strings match nothing.
func Narrow(perms, actions, resources []string) ([]string, error) {
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
// (pattern itself when requested is empty), where one contains the other.
func narrowTo(pattern string, requested []string) []string {
	if len(requested) == 0 {
		return []string{pattern}
	}
	var out []string
	for _, r := range requested {
		switch {
		case globMatch(pattern, r):
			out = append(out, r)
		case globMatch(r, pattern):
			out = append(out, pattern)
		}
	}
	return out
}
