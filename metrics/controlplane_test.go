package metrics

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/felixmq/felix/controlplane"
)

// failingApplier applies everything except the stream named "bad".
type failingApplier struct{}

func (failingApplier) EnsureTenant(controlplane.Tenant) error       { return nil }
func (failingApplier) EnsureNamespace(controlplane.Namespace) error { return nil }
func (failingApplier) EnsureCache(controlplane.Cache) error         { return nil }
func (failingApplier) EnsureStream(s controlplane.Stream) error {
	if s.Stream == "bad" {
		return errors.New("refused")
	}
	return nil
}
func (failingApplier) DeleteStream(controlplane.StreamKey) error       { return nil }
func (failingApplier) DeleteCache(controlplane.CacheKey) error         { return nil }
func (failingApplier) DeleteNamespace(controlplane.NamespaceKey) error { return nil }
func (failingApplier) DeleteTenant(string) error                       { return nil }

// A broker following a control plane exports the follower's counters; one
// object that cannot be applied shows as a failed object and apply errors.
func TestFollowerMetrics(t *testing.T) {
	store, err := controlplane.Open(filepath.Join(t.TempDir(), "cp.db"), controlplane.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.CreateTenant(controlplane.Tenant{TenantID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateNamespace(controlplane.Namespace{TenantID: "t1", Namespace: "ns"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"good", "bad"} {
		if _, err := store.CreateStream(controlplane.Stream{TenantID: "t1", Namespace: "ns", Stream: name}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := controlplane.NewFollower(controlplane.FollowerOptions{Source: store, Applier: failingApplier{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var follower atomic.Pointer[controlplane.Follower] // none yet: no series
	s := startServer(t, Options{Sources: Sources{Follower: follower.Load}})
	if fam := scrape(t, s); fam["felix_controlplane_syncs_total"] != nil {
		t.Fatal("follower series exported before there is a follower")
	}
	follower.Store(f)
	if err := f.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	fam := scrape(t, s)
	for name, want := range map[string]float64{
		"felix_controlplane_syncs_total":           1,
		"felix_controlplane_applied_total":         3, // tenant, namespace, good
		"felix_controlplane_apply_errors_total":    1,
		"felix_controlplane_failed_objects":        1,
		"felix_controlplane_skipped_objects_total": 0,
		"felix_controlplane_kept_objects_total":    0,
	} {
		if got := fam.value(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// Every felix_* family the collector can export is documented in
// docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 256)
	collector{src: &Sources{}}.Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	n := 0
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		n++
		if !strings.Contains(string(doc), "`"+m[1]+"`") {
			t.Errorf("%s is not in docs/metrics.md", m[1])
		}
	}
	if n < 40 {
		t.Fatalf("only %d families described", n)
	}
}
