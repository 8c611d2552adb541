package commitlog

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDirFor(t *testing.T) {
	root := "/data"
	cases := map[string][]string{
		"/data/streams/t/ns/s":       {"streams", "t", "ns", "s"},
		"/data/%2E./%2Ehidden/a%2Fb": {"..", ".hidden", "a/b"},
		"/data/%252E.":               {"%2E."}, // a literal % is escaped, so no collision with ".."
		"/data/caf%C3%A9/x:y":        {"café", "x:y"},
	}
	for want, parts := range cases {
		got := DirFor(root, parts...)
		if got != filepath.FromSlash(want) {
			t.Errorf("DirFor(%q) = %q, want %q", parts, got, want)
		}
		if rel, err := filepath.Rel(root, got); err != nil || rel == ".." || filepath.IsAbs(rel) || len(rel) >= 2 && rel[:2] == ".." {
			t.Errorf("DirFor(%q) = %q escapes the root", parts, got)
		}
	}
}

// TestDirForLongNames: every valid broker name (up to 255 bytes) gives a
// directory a log can be opened in, however long its escaped form, and
// long names still map to distinct directories.
func TestDirForLongNames(t *testing.T) {
	root := t.TempDir()
	names := []string{
		strings.Repeat("é", 127),       // 254 bytes, 762 escaped
		strings.Repeat("é", 127) + "x", // differs only past the kept prefix
		"." + strings.Repeat("a", 254), // 255 bytes, 257 escaped
		strings.Repeat("a", 199) + "é", // the cut falls inside an escape
		strings.Repeat("a", 255),       // 255 bytes, kept as it is
	}
	seen := map[string]string{}
	for _, name := range names {
		dir := DirFor(root, "streams", name)
		if prev, dup := seen[dir]; dup {
			t.Fatalf("%q and %q both map to %s", prev, name, dir)
		}
		seen[dir] = name
		if elem := filepath.Base(dir); len(elem) > maxDirElem || strings.Contains(elem, "/") {
			t.Fatalf("DirFor(%q) makes the element %q (%d bytes)", name, elem, len(elem))
		}
		l, err := Open(dir, testOptions())
		if err != nil {
			t.Fatalf("Open(DirFor(%q)): %v", name, err)
		}
		l.Close()
	}
	if got := DirFor(root, strings.Repeat("a", 255)); got != filepath.Join(root, strings.Repeat("a", 255)) {
		t.Fatalf("a name that fits changed: %s", got)
	}
}
