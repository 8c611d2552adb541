package commitlog

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
)

// maxDirElem is the longest directory name DirFor makes: NAME_MAX on Linux
// and macOS.
const maxDirElem = 255

// DirFor returns root joined with one directory level per name part, each
// path-escaped (and a leading dot escaped too), so any name maps to a safe,
// unique and readable path: "a/b", "..", "x:y" cannot escape root or collide.
// A part whose escaped form would be longer than a directory name may be
// (a 255-byte name of accented letters escapes to 3 bytes a byte) becomes
// its first 200 escaped bytes, "%~" and 32 hex digits of its SHA-256: an
// escaped form never holds "%~", so it collides with no other name.
func DirFor(root string, parts ...string) string {
	elems := []string{root}
	for _, p := range parts {
		e := url.PathEscape(p)
		if strings.HasPrefix(e, ".") {
			e = "%2E" + e[1:]
		}
		if len(e) > maxDirElem {
			cut := 200
			if i := strings.LastIndexByte(e[cut-2:cut], '%'); i >= 0 {
				cut -= 2 - i // do not split a %XX escape
			}
			sum := sha256.Sum256([]byte(p))
			e = e[:cut] + "%~" + hex.EncodeToString(sum[:16])
		}
		elems = append(elems, e)
	}
	return filepath.Join(elems...)
}
