package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "felix ") || !strings.Contains(out, "felix-wire v1") {
		t.Fatalf("version output %q", out)
	}
	if _, err := runCLI(t, "version", "extra"); err == nil {
		t.Fatal("version accepted an argument")
	}
}
