package commitlog

import (
	"path/filepath"
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
