package commitlog

import (
	"net/url"
	"path/filepath"
	"strings"
)

// DirFor returns root joined with one directory level per name part, each
// path-escaped (and a leading dot escaped too), so any name maps to a safe,
// unique and readable path: "a/b", "..", "x:y" cannot escape root or collide.
func DirFor(root string, parts ...string) string {
	elems := []string{root}
	for _, p := range parts {
		e := url.PathEscape(p)
		if strings.HasPrefix(e, ".") {
			e = "%2E" + e[1:]
		}
		elems = append(elems, e)
	}
	return filepath.Join(elems...)
}
