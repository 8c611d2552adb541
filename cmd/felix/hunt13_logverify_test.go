package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// felix log verify, dump and repair given a directory that is not a log
// (the data dir, its streams/ or caches/ level, a backup's root, an empty
// directory) fail saying so, and name the logs below it to check each,
// rather than answering "ok" (or nothing) about a log of 0 records: an
// operator checking a backup with `felix log verify DEST`, as
// docs/operations.md suggests, must not be told it verified.
func TestHunt13LogCommandsRefuseNonLogDirs(t *testing.T) {
	root := t.TempDir()
	for _, rel := range []string{"streams/t/ns/a", "caches/t/ns/kv", "groups/t/ns/a/g"} {
		dir := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(writeTestLog(t, 5), dir); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir   string
		names []string // logs the message must name
	}{
		{root, []string{"streams/t/ns/a", "caches/t/ns/kv", "groups/t/ns/a/g"}},
		{filepath.Join(root, "streams"), []string{"t/ns/a"}},
		{empty, nil},
	} {
		for _, args := range [][]string{{"log", "verify"}, {"log", "dump"}, {"log", "repair", "--yes"}} {
			out, err := runCLI(t, append(args, c.dir)...)
			if err == nil || !strings.Contains(err.Error(), "not a log directory") {
				t.Fatalf("felix %v %s: %v, want refused as not a log directory; output:\n%s", args, c.dir, err, out)
			}
			for _, n := range c.names {
				if !strings.Contains(err.Error(), filepath.FromSlash(n)) {
					t.Errorf("felix %v %s: %v does not name the log %s below it", args, c.dir, err, n)
				}
			}
		}
	}
	// A log itself is still verified.
	if out, err := runCLI(t, "log", "verify", filepath.Join(root, "caches/t/ns/kv")); err != nil || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("verify of a log: %v\n%s", err, out)
	}
}
