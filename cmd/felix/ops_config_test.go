package main

import (
	"os"
	"strings"
	"testing"
)

// printConfigErr runs serve --print-config (which validates like a start)
// and returns its error.
func printConfigErr(t *testing.T, args ...string) error {
	t.Helper()
	_, err := runCLI(t, append([]string{"serve", "--print-config", "--data-dir", t.TempDir()}, args...)...)
	return err
}

// Each negative tenant limit is reported under its own name, the way it
// was given (it was reported as --tenant-max-connections whichever it was).
func TestTenantLimitErrorsNameTheirSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  [2]string
		want string
	}{
		{args: []string{"--tenant-publish-bytes-per-sec", "-1"}, want: "--tenant-publish-bytes-per-sec: must not be negative"},
		{args: []string{"--tenant-max-subscriptions", "-2"}, want: "--tenant-max-subscriptions: must not be negative"},
		{args: []string{"--tenant-max-connections", "-3"}, want: "--tenant-max-connections: must not be negative"},
		{env: [2]string{"FELIX_TENANT_MAX_SUBSCRIPTIONS", "-1"}, want: "FELIX_TENANT_MAX_SUBSCRIPTIONS: must not be negative"},
	} {
		if c.env[0] != "" {
			t.Setenv(c.env[0], c.env[1])
		}
		err := printConfigErr(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: err %v, want %q", c.args, c.env, err, c.want)
		}
	}
}

// Sizes allocated up front are bounded: a typo must not let the broker
// start and then die of an out-of-memory fatal error (the replay ring at
// start, a subscriber queue at the first subscription).
func TestServeRefusesAbsurdPreallocatedSizes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--replay-ring", "1099511627776"}, "--replay-ring: must be at most"},
		{[]string{"--queue-capacity", "2000000000"}, "--queue-capacity: must be at most"},
	} {
		err := printConfigErr(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
	// The bounds themselves are accepted.
	if err := printConfigErr(t, "--replay-ring", "1048576", "--queue-capacity", "1048576"); err != nil {
		t.Errorf("bounds refused: %v", err)
	}
}

// A stream or cache declared twice is refused at start naming the setting,
// instead of a misleading error from the second open of the same log
// ("open in another log (this process or another)") or one winner among
// two sync policies.
func TestServeRefusesDuplicateDeclarations(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		file string
		want string
	}{
		{name: "durable twice", args: []string{"--durable-stream", "a/b/c", "--durable-stream", "a/b/c:always"}, want: "--durable-stream: stream a/b/c declared more than once"},
		{name: "memory and durable", args: []string{"--stream", "a/b/c", "--durable-stream", "a/b/c"}, want: "--durable-stream: stream a/b/c declared more than once (also in --stream)"},
		{name: "stream twice", args: []string{"--stream", "a/b/c,a/b/c"}, want: "--stream: stream a/b/c declared more than once"},
		{name: "cache twice", args: []string{"--cache", "a/b/c:10", "--cache", "a/b/c:20"}, want: "--cache: cache a/b/c declared more than once"},
		{name: "in a file", file: "durable_stream: [a/b/c, a/b/c]\n", want: "durable_stream (config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append(args, "--config", writeConfig(t, c.file))
			}
			err := printConfigErr(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}

// In development mode the default stream and cache give way to a
// declaration of the same name: `felix serve --durable-stream
// default/default/demo` makes the demo stream durable (it failed with
// "stream already exists"), `--cache default/default/demo:4096` bounds the
// demo cache (it failed with "cache exists with config").
func TestDevDefaultsGiveWayToDeclarations(t *testing.T) {
	_, b, _ := startServe(t, "--durable-stream", "default/default/demo", "--cache", "default/default/demo:4096",
		"--stream", "default/default/jobs")
	st, err := b.Stream("default", "default", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stats().Durable {
		t.Error("default/default/demo is not durable")
	}
	jobs, err := b.Stream("default", "default", "jobs")
	if err != nil {
		t.Fatal(err)
	}
	if jobs.Stats().Durable {
		t.Error("default/default/jobs was declared in memory but is durable")
	}
}

// A malformed declaration is refused before anything starts (and by
// --print-config), naming the setting the way it was given: a config
// file's durable_stream, not a --durable-stream the user never typed.
func TestServeRefusesMalformedDeclarationsUpFront(t *testing.T) {
	for _, c := range []struct {
		args []string
		file string
		want string
	}{
		{args: []string{"--stream", "a/b"}, want: `--stream: "a/b": want tenant/namespace/name`},
		{args: []string{"--stream", "a//c"}, want: `--stream: "a//c": invalid name: empty namespace`},
		{args: []string{"--durable-stream", "a/b/c:sometimes"}, want: `--durable-stream: "a/b/c:sometimes"`},
		{args: []string{"--cache", "a/b/c:-5"}, want: `--cache: "a/b/c:-5"`},
		{file: "durable_stream: [a/b]\n", want: `durable_stream (config`},
		{file: "cache: [x]\n", want: `cache (config`},
	} {
		args := c.args
		if c.file != "" {
			args = append(args, "--config", writeConfig(t, c.file))
		}
		err := printConfigErr(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %q: err %v, want %q", c.args, c.file, err, c.want)
		}
	}
}

// An empty listen address is refused: the broker listened on every
// interface ([::]) on a random port, exposing a development broker (any
// token accepted) or the admin API to the network, from an empty
// FELIX_LISTEN or a `listen: ~` in a file.
func TestServeRefusesEmptyListenAddresses(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  [2]string
		file string
		want string
	}{
		{env: [2]string{"FELIX_LISTEN", ""}, want: "FELIX_LISTEN: empty address"},
		{args: []string{"--controlplane-addr", ""}, want: "--controlplane-addr: empty address"},
		{args: []string{"--metrics-addr", ""}, want: "--metrics-addr: empty address"},
		{args: []string{"--listen", "5000"}, want: "--listen: want host:port"},
		{file: "listen: ~\n", want: "listen (config"},
		{file: "quic_bind:\n", want: "quic_bind (config"},
	} {
		if c.env[0] != "" {
			t.Setenv(c.env[0], c.env[1])
		}
		args := c.args
		if c.file != "" {
			args = append(args, "--config", writeConfig(t, c.file))
		}
		err := printConfigErr(t, args...)
		if c.env[0] != "" {
			os.Unsetenv(c.env[0])
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v %q: err %v, want %q", c.args, c.env, c.file, err, c.want)
		}
	}
	// On purpose: every interface, and off.
	if err := printConfigErr(t, "--listen", ":5000", "--metrics-addr", "off", "--controlplane-addr", "off"); err != nil {
		t.Errorf("valid addresses refused: %v", err)
	}
}

// A float that is a whole number is accepted where an integer is wanted
// (YAML writes big numbers so: 2.5e8), not refused as "2.5e+08".
func TestConfigWholeFloatIsAnInteger(t *testing.T) {
	m, _ := effective(t, "--config", writeConfig(t, "segment_bytes: 2.5e8\n"))
	if m["segment_bytes"] != 250000000 {
		t.Errorf("segment_bytes = %v", m["segment_bytes"])
	}
}

// --auth-timeout refuses values that would close every connection before
// its client could authenticate, and accepts short ones above the floor.
func TestServeAuthTimeoutBounds(t *testing.T) {
	for _, bad := range []string{"0s", "-1s", "1ms"} {
		err := printConfigErr(t, "--auth-timeout", bad)
		if err == nil || !strings.Contains(err.Error(), "--auth-timeout: must be at least 10ms") {
			t.Errorf("--auth-timeout %s: err %v", bad, err)
		}
	}
	if err := printConfigErr(t, "--auth-timeout", "250ms"); err != nil {
		t.Errorf("--auth-timeout 250ms refused: %v", err)
	}
}
