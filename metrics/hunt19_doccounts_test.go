package metrics

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// docTypes maps each metric of docs/metrics.md's tables to its documented
// type.
func docTypes(t *testing.T, doc string) map[string]string {
	t.Helper()
	row := regexp.MustCompile("(?m)^\\| `(felix_[a-z_]+)` \\| ([a-z]+) \\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func checkTypes[T any](t *testing.T, doc map[string]string, ms []metric[T]) {
	t.Helper()
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for _, m := range ms {
		n := name.FindStringSubmatch(m.desc.String())[1]
		want := map[prometheus.ValueType]string{prometheus.CounterValue: "counter", prometheus.GaugeValue: "gauge"}[m.typ]
		if doc[n] != want {
			t.Errorf("%s is a %s, docs/metrics.md says %q", n, want, doc[n])
		}
	}
}

// docs/metrics.md gives each per-object family its type, and says how
// many series a stream, a durable stream, a consumer group, a cache and a
// durable cache add, for an operator sizing Prometheus. Before, it said
// 14 per consumer group (there are 19) and the package doc gave other
// numbers still.
func TestMetricsDocTypesAndSeriesCounts(t *testing.T) {
	raw, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	types := docTypes(t, doc)
	checkTypes(t, types, serverMetrics)
	checkTypes(t, types, serviceMetrics)
	checkTypes(t, types, streamMetrics)
	checkTypes(t, types, storageMetrics)
	checkTypes(t, types, groupMetrics)
	checkTypes(t, types, cacheMetrics)
	checkTypes(t, types, cacheLogMetrics)
	checkTypes(t, types, followerMetrics)
	checkTypes(t, types, diskMetrics)

	want := []int{len(streamMetrics), len(storageMetrics), len(groupMetrics), len(cacheMetrics), len(cacheLogMetrics)}
	sentence := regexp.MustCompile(`(\d+) series per stream, (\d+) more per durable stream, (\d+) per consumer\s+group and (\d+) per cache, (\d+) more per durable cache`)
	pkgDoc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for file, text := range map[string]string{
		"docs/metrics.md": doc,
		"metrics/doc.go":  strings.ReplaceAll(string(pkgDoc), "\n//", ""),
	} {
		m := sentence.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("%s: no sentence giving the series per object", file)
			continue
		}
		for i, w := range want {
			if got, _ := strconv.Atoi(m[i+1]); got != w {
				t.Errorf("%s: %q: want %v (stream, durable stream, group, cache, durable cache)", file, m[0], want)
				break
			}
		}
	}
}
