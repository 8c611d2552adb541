package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "felix.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// effective runs serve --print-config and returns the parsed values and the
// raw output.
func effective(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	out, err := runCLI(t, append([]string{"serve", "--print-config"}, args...)...)
	if err != nil {
		t.Fatalf("print-config: %v\n%s", err, out)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("print-config output is not YAML: %v\n%s", err, out)
	}
	return m, out
}

func TestConfigLayersPrecedence(t *testing.T) {
	cfg := writeConfig(t, `
queue_capacity: 100
queue-policy: drop_old
max_frame_bytes: 4096
stream: [a/b/c, a/b/d]
shutdown_timeout: 3s
`)
	t.Setenv("FELIX_MAX_FRAME_BYTES", "8192")
	t.Setenv("FELIX_QUEUE_POLICY", "block")
	m, out := effective(t, "--config", cfg, "--queue-policy", "drop_new")

	if m["queue_capacity"] != 100 {
		t.Errorf("file value not applied: queue_capacity=%v", m["queue_capacity"])
	}
	if m["max_frame_bytes"] != 8192 {
		t.Errorf("env must beat file: max_frame_bytes=%v", m["max_frame_bytes"])
	}
	if m["queue_policy"] != "drop_new" {
		t.Errorf("flag must beat env and file: queue_policy=%v", m["queue_policy"])
	}
	if m["shutdown_timeout"] != "3s" {
		t.Errorf("shutdown_timeout=%v", m["shutdown_timeout"])
	}
	if s, _ := m["stream"].([]any); len(s) != 2 || s[0] != "a/b/c" || s[1] != "a/b/d" {
		t.Errorf("stream list=%v", m["stream"])
	}
	for _, want := range []string{
		"queue_policy: drop_new # --queue-policy",
		"max_frame_bytes: 8192 # FELIX_MAX_FRAME_BYTES",
		"queue_capacity: 100 # queue_capacity (config " + cfg + ")",
		"fsync: interval # default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("print-config lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigReferenceKeys(t *testing.T) {
	cfg := writeConfig(t, `
quic_bind: 127.0.0.1:5999
event_batch_max_delay_us: 250
shutdown_drain_timeout_ms: 1500
subscriber_queue_policy: block
`)
	m, _ := effective(t, "--config", cfg)
	want := map[string]any{"listen": "127.0.0.1:5999", "event_batch_max_delay": "250µs",
		"shutdown_timeout": "1.5s", "queue_policy": "block"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// A reference key and our own name for the same setting conflict.
	dup := writeConfig(t, "quic_bind: 127.0.0.1:1\nlisten: 127.0.0.1:2\n")
	if out, err := runCLI(t, "serve", "--print-config", "--config", dup); err == nil ||
		!strings.Contains(err.Error(), "sets the same setting") {
		t.Fatalf("duplicate setting accepted: %v %s", err, out)
	}
}

// printing the effective config and loading it back gives the same config.
func TestPrintConfigRoundTrip(t *testing.T) {
	_, first := effective(t, "--queue-capacity", "77", "--stream", "x/y/z")
	cfg := writeConfig(t, first)
	m, _ := effective(t, "--config", cfg)
	if m["queue_capacity"] != 77 {
		t.Fatalf("round trip lost queue_capacity: %v", m["queue_capacity"])
	}
	if s, _ := m["stream"].([]any); len(s) != 1 || s[0] != "x/y/z" {
		t.Fatalf("round trip lost stream: %v", m["stream"])
	}
}

// Invalid values stop the broker at start with a message naming the key,
// the way the user set it.
func TestConfigInvalidValuesNameTheKey(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	cases := []struct {
		name, file string
		env        [2]string
		args       []string
		want       string
	}{
		{name: "negative size in file", file: "queue_capacity: -5\n", want: "queue_capacity (config"},
		{name: "negative size flag", args: []string{"--segment-bytes", "-1"}, want: "--segment-bytes: must be positive"},
		{name: "negative size env", env: [2]string{"FELIX_RETENTION_BYTES", "-1"}, want: "FELIX_RETENTION_BYTES: must not be negative"},
		{name: "unknown policy", file: "queue_policy: sometimes\n", want: "queue_policy (config"},
		{name: "unknown fsync", file: "fsync: sometimes\n", want: "fsync (config"},
		{name: "unreadable cert", file: "tls_cert: " + missing + "\ntls_key: " + missing + "\n", want: "tls_cert (config"},
		{name: "unknown key", file: "queue_capacty: 5\n", want: "queue_capacty (config"},
		{name: "bad type", file: "queue_capacity: lots\n", want: "queue_capacity (config"},
		{name: "list for scalar", file: "listen: [a, b]\n", want: "want a single value"},
		{name: "log level", file: "log_level: loud\n", want: "log_level (config"},
		{name: "missing file", args: []string{"--config", missing}, want: "--config: open"},
		{name: "busy fsync interval", args: []string{"--fsync-interval", "1ns"}, want: "--fsync-interval: must be at least 1ms"},
		{name: "busy jwks refresh", args: []string{"--jwks-refresh", "1us"}, want: "--jwks-refresh: must be at least 10ms"},
		{name: "busy control-plane poll", args: []string{"--controlplane-sync-interval", "1ms"}, want: "--controlplane-sync-interval: must be at least 10ms"},
		{name: "frame over 32 bits", args: []string{"--max-frame-bytes", "4294967296"}, want: "--max-frame-bytes: must be between 1 and 4294967295"},
		{name: "zero auto-create bound", args: []string{"--auto-create-max-streams", "0"}, want: "--auto-create-max-streams: must be positive, or -1"},
		{name: "zero attempts", args: []string{"--queue-max-attempts", "0"}, want: "--queue-max-attempts: must be positive, or -1"},
		{name: "zero in-flight bytes", args: []string{"--queue-max-inflight-bytes", "0"}, want: "--queue-max-inflight-bytes: must be positive"},
		{name: "backoff max below min", args: []string{"--queue-backoff-min", "2s", "--queue-backoff-max", "1s"}, want: "--queue-backoff-max: 1s is below"},
		{name: "zero backoff", file: "queue_backoff_min: 0s\n", want: "queue_backoff_min (config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			out, err := runCLI(t, append(args, tc.args...)...)
			if err == nil {
				t.Fatalf("broker started with invalid config; output:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name the key (want %q)", err, tc.want)
			}
		})
	}
}

// The reference broker's environment variable names work too, with their
// units; our own names win over them.
func TestReferenceEnvAliases(t *testing.T) {
	t.Setenv("FELIX_QUIC_BIND", "127.0.0.1:5777")
	t.Setenv("FELIX_SHUTDOWN_DRAIN_TIMEOUT_MS", "1500")
	t.Setenv("FELIX_SUB_QUEUE_POLICY", "block")
	t.Setenv("FELIX_DURABLE_RETENTION_SECONDS", "3600")
	t.Setenv("FELIX_SUB_QUEUE_CAPACITY", "99")
	t.Setenv("FELIX_QUEUE_CAPACITY", "7") // ours wins
	m, out := effective(t)
	want := map[string]any{"listen": "127.0.0.1:5777", "shutdown_timeout": "1.5s", "queue_policy": "block",
		"retention_age": "1h0m0s", "queue_capacity": 7}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if !strings.Contains(out, "# FELIX_QUIC_BIND") {
		t.Errorf("print-config does not name the reference variable:\n%s", out)
	}
	t.Setenv("FELIX_EVENT_BATCH_MAX_DELAY_US", "soon")
	if _, err := runCLI(t, "serve", "--print-config"); err == nil || !strings.Contains(err.Error(), "FELIX_EVENT_BATCH_MAX_DELAY_US") {
		t.Fatalf("bad reference variable: %v", err)
	}
}
