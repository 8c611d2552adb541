package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The serve configuration has three layers under the command line: every
// flag is also a FELIX_* environment variable and a key of the YAML file
// named by --config (or FELIX_CONFIG). A flag wins over the environment,
// which wins over the file, which wins over the built-in default.
//
// File keys are the flag names with '-' or '_' (queue-policy or
// queue_policy). The reference broker's main YAML keys (§4.1 of the
// reference inventory) are accepted as aliases with their units; see
// referenceKeys.

// refKey maps a reference YAML key to one of our flags. unit, when set, is
// the unit of the reference's integer value for a duration flag.
type refKey struct {
	flag string
	unit time.Duration
}

// duration is the flag text for n of the key's unit (1500 with unit ms →
// "1.5s"). A count whose duration does not fit an int64 of nanoseconds
// (some 292 years) is an error: n × unit would wrap around into another
// duration, a huge retention into a tiny one.
func (r refKey) duration(n int64) (string, error) {
	if limit := int64(math.MaxInt64 / r.unit); n > limit || n < -limit {
		return "", fmt.Errorf("%d×%v does not fit a duration (at most %d)", n, r.unit, limit)
	}
	return (time.Duration(n) * r.unit).String(), nil
}

// referenceKeys are the reference broker's YAML keys that mean the same
// thing here.
var referenceKeys = map[string]refKey{
	"quic_bind":                  {flag: "listen"},
	"metrics_bind":               {flag: "metrics-addr"},
	"max_frame_bytes":            {flag: "max-frame-bytes"},
	"event_batch_max_events":     {flag: "event-batch-max-events"},
	"event_batch_max_bytes":      {flag: "event-batch-max-bytes"},
	"event_batch_max_delay_us":   {flag: "event-batch-max-delay", unit: time.Microsecond},
	"subscriber_queue_capacity":  {flag: "queue-capacity"},
	"subscriber_queue_policy":    {flag: "queue-policy"},
	"max_subscriptions_per_conn": {flag: "max-subscriptions-per-conn"},
	"shutdown_drain_timeout_ms":  {flag: "shutdown-timeout", unit: time.Millisecond},
}

// referenceEnv are the reference broker's environment variables (§4.1)
// whose names differ from ours but mean the same thing. Ours win when both
// are set.
var referenceEnv = map[string]refKey{
	"FELIX_QUIC_BIND":                     {flag: "listen"},
	"FELIX_BROKER_METRICS_BIND":           {flag: "metrics-addr"},
	"FELIX_EVENT_BATCH_MAX_DELAY_US":      {flag: "event-batch-max-delay", unit: time.Microsecond},
	"FELIX_SUBSCRIBER_QUEUE_CAPACITY":     {flag: "queue-capacity"},
	"FELIX_SUB_QUEUE_CAPACITY":            {flag: "queue-capacity"},
	"FELIX_SUB_QUEUE_POLICY":              {flag: "queue-policy"},
	"FELIX_SHUTDOWN_DRAIN_TIMEOUT_MS":     {flag: "shutdown-timeout", unit: time.Millisecond},
	"FELIX_CONTROLPLANE_SYNC_INTERVAL_MS": {flag: "controlplane-sync-interval", unit: time.Millisecond},
	"FELIX_DURABLE_FSYNC_INTERVAL_MS":     {flag: "fsync-interval", unit: time.Millisecond},
	"FELIX_DURABLE_SEGMENT_BYTES":         {flag: "segment-bytes"},
	"FELIX_DURABLE_RETENTION_BYTES":       {flag: "retention-bytes"},
	"FELIX_DURABLE_RETENTION_SECONDS":     {flag: "retention-age", unit: time.Second},
}

// applyReferenceEnv sets unset flags from the reference's variable names.
func applyReferenceEnv(fs *pflag.FlagSet, src configSources) error {
	names := make([]string, 0, len(referenceEnv))
	for name := range referenceEnv {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		ref := referenceEnv[name]
		v, ok := os.LookupEnv(name)
		if !ok || fs.Lookup(ref.flag) == nil {
			continue
		}
		if _, set := src[ref.flag]; set {
			continue // our own name, or a flag, wins
		}
		if ref.unit != 0 {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want an integer", name, v))
				continue
			}
			if v, err = ref.duration(n); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, os.Getenv(name), err))
				continue
			}
		}
		if err := fs.Set(ref.flag, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			continue
		}
		src[ref.flag] = name
	}
	return errors.Join(errs...)
}

// notConfigKeys are flags that make no sense in a file.
var notConfigKeys = map[string]bool{"help": true, "config": true, "print-config": true}

// configSources records where each flag's effective value came from, for
// error messages and --print-config.
type configSources map[string]string

// describe names a key the way the user set it: "--queue-capacity",
// "FELIX_QUEUE_CAPACITY" or "queue_capacity (config felix.yaml)".
func (s configSources) describe(flag string) string {
	if src, ok := s[flag]; ok {
		return src
	}
	return "--" + flag
}

// loadLayers applies the environment and then the config file to every flag
// of fs the command line did not set, and returns where each value came
// from.
func loadLayers(fs *pflag.FlagSet) (configSources, error) {
	src := configSources{}
	fs.Visit(func(f *pflag.Flag) { src[f.Name] = "--" + f.Name })
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	fs.Visit(func(f *pflag.Flag) {
		if _, ok := src[f.Name]; !ok {
			src[f.Name] = flagEnv(f)
		}
	})
	if err := applyReferenceEnv(fs, src); err != nil {
		return nil, err
	}
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return src, nil
	}
	path := cf.Value.String()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.describe("config"), err)
	}
	if err := applyConfigYAML(fs, path, data, src); err != nil {
		return nil, err
	}
	return src, nil
}

// applyConfigYAML sets the flags named by the keys of a YAML mapping,
// skipping flags already set by a higher layer. Unknown keys are errors.
func applyConfigYAML(fs *pflag.FlagSet, path string, data []byte, src configSources) error {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	seen := map[string]string{}
	for _, key := range keys {
		name, val, err := configValue(fs, key, doc[key])
		where := fmt.Sprintf("%s (config %s)", key, path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if other, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("%s: sets the same setting as %s", where, other))
			continue
		}
		seen[name] = key
		if _, set := src[name]; set {
			continue // a flag or the environment wins
		}
		if err := fs.Set(name, val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		src[name] = where
	}
	return errors.Join(errs...)
}

// configValue resolves a file key to a flag name and the flag's text form
// of the value.
func configValue(fs *pflag.FlagSet, key string, v any) (string, string, error) {
	if ref, ok := referenceKeys[key]; ok {
		if fs.Lookup(ref.flag) == nil {
			return "", "", fmt.Errorf("not supported by this command")
		}
		if ref.unit != 0 {
			n, ok := v.(int)
			if !ok {
				return "", "", fmt.Errorf("want an integer, got %v", v)
			}
			d, err := ref.duration(int64(n))
			return ref.flag, d, err
		}
		s, err := scalarText(v)
		return ref.flag, s, err
	}
	name := strings.ReplaceAll(key, "_", "-")
	f := fs.Lookup(name)
	if f == nil || notConfigKeys[name] {
		return "", "", fmt.Errorf("unknown key")
	}
	if list, ok := v.([]any); ok {
		if !strings.HasSuffix(f.Value.Type(), "Slice") {
			return "", "", fmt.Errorf("want a single value, got a list")
		}
		parts := make([]string, len(list))
		for i, e := range list {
			s, err := scalarText(e)
			if err != nil {
				return "", "", err
			}
			parts[i] = s
		}
		return name, strings.Join(parts, ","), nil
	}
	s, err := scalarText(v)
	return name, s, err
}

func scalarText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", errors.New("no value (remove the key to use the default)")
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil // 2.5e8 as 250000000
	default:
		return "", fmt.Errorf("want a scalar value, got %T", v)
	}
}

// printConfig writes the effective configuration as YAML that --config
// accepts, each key commented with where its value came from.
func printConfig(w io.Writer, fs *pflag.FlagSet, src configSources) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	fs.VisitAll(func(f *pflag.Flag) {
		if notConfigKeys[f.Name] {
			return
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: strings.ReplaceAll(f.Name, "-", "_")}
		val := flagNode(f)
		where, ok := src[f.Name]
		if !ok {
			where = "default"
		}
		val.LineComment = where
		root.Content = append(root.Content, key, val)
	})
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return err
	}
	return enc.Close()
}

func flagNode(f *pflag.Flag) *yaml.Node {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range sv.GetSlice() {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
		}
		return seq
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: f.Value.String(), Tag: "!!str"}
	switch f.Value.Type() {
	case "bool":
		n.Tag = "!!bool"
	case "int", "int64", "uint", "uint64", "int32":
		n.Tag = "!!int"
	}
	return n
}
