package auth

// globMatch reports whether s matches pattern, where '*' matches any run of
// characters (including '/' and the empty run) and every other byte matches
// itself. It runs in O(len(pattern)·len(s)) time at worst, without
// recursion.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0 // last '*' in pattern and the position in s it absorbed up to
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
