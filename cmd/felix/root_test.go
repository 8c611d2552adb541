package main

import (
	"bytes"
	"errors"
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

func TestErrorLineHasOnePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"felix: server: stream not found: x":       "felix: server: stream not found: x",
		"unknown command \"x\"":                    "felix: unknown command \"x\"",
		"felix: felix: server: x":                  "felix: server: x",
		"demo orders: subscribe: felix: server: x": "felix: demo orders: subscribe: server: x",
	} {
		if got := errorLine(errors.New(in)); got != want {
			t.Errorf("errorLine(%q) = %q, want %q", in, got, want)
		}
	}
}
