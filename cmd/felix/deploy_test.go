package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The Kubernetes manifests and the Dockerfile only name settings that
// exist: the ConfigMap's config.yaml is accepted by serve --config, and
// every FELIX_* variable the image sets is a serve flag.
func TestDeployManifestsMatchTheBinary(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "k8s", "felix.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	kinds := map[string]map[string]any{}
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("manifest is not YAML: %v", err)
		}
		kinds[doc["kind"].(string)] = doc
	}
	for _, k := range []string{"ConfigMap", "Service", "StatefulSet"} {
		if kinds[k] == nil {
			t.Fatalf("manifest has no %s", k)
		}
	}
	conf := kinds["ConfigMap"]["data"].(map[string]any)["config.yaml"].(string)
	m, _ := effective(t, "--config", writeConfig(t, conf))
	if m["listen"] != "0.0.0.0:5000" || m["metrics_addr"] != "0.0.0.0:8080" {
		t.Fatalf("config map listen=%v metrics_addr=%v", m["listen"], m["metrics_addr"])
	}
	// Probes point at the health endpoints.
	if !bytes.Contains(raw, []byte("path: /ready")) || !bytes.Contains(raw, []byte("path: /live")) {
		t.Fatal("probes do not use /ready and /live")
	}

	df, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	serve := newServeCmd()
	envs := 0
	sc := bufio.NewScanner(bytes.NewReader(df))
	for sc.Scan() {
		for _, field := range strings.Fields(sc.Text()) {
			name, _, ok := strings.Cut(field, "=")
			if !ok || !strings.HasPrefix(name, "FELIX_") {
				continue
			}
			envs++
			flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "FELIX_")), "_", "-")
			if serve.Flags().Lookup(flag) == nil {
				t.Errorf("Dockerfile sets %s but serve has no --%s", name, flag)
			}
		}
	}
	if envs == 0 {
		t.Fatal("Dockerfile sets no FELIX_* variables")
	}
	// The image's own defaults are a config file serve accepts.
	img, _ := effective(t, "--config", filepath.Join("..", "..", "deploy", "container.yaml"))
	if img["listen"] != "0.0.0.0:5000" || img["metrics_addr"] != "0.0.0.0:8080" || img["data_dir"] != "/var/lib/felix" {
		t.Fatalf("container defaults: listen=%v metrics_addr=%v data_dir=%v", img["listen"], img["metrics_addr"], img["data_dir"])
	}
}
