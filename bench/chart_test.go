package bench

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestWriteChartsWritesValidSVGAndPNG(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts") // created by WriteCharts
	rows := []Row{
		{Case: "fanout=1 payload=256", System: "felix", Felix: true, Round: 1, Latency: lat(100 * time.Microsecond), Rate: 9000, Unit: "msg/s"},
		{Case: "fanout=1 payload=256", System: "nats", Round: 1, Latency: lat(80 * time.Microsecond), Rate: 9500, Unit: "msg/s"},
		{Case: "fanout=10 payload=256", System: "felix", Felix: true, Round: 1, Latency: lat(300 * time.Microsecond), Rate: 90000, Unit: "msg/s"},
		{Case: "fanout=10 payload=256", System: "nats", Round: 1, Unit: "msg/s"}, // no samples: not in its latency chart
		{Case: "fanout=1 payload=256", System: "felix", Felix: true, Round: 2, Latency: lat(200 * time.Microsecond), Rate: 8000, Unit: "msg/s"},
	}
	files, err := WriteCharts(dir, "pubsub", rows)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{
		"pubsub-latency-fanout-1-payload-256.svg", "pubsub-latency-fanout-1-payload-256.png",
		"pubsub-latency-fanout-10-payload-256.svg", "pubsub-latency-fanout-10-payload-256.png",
		"pubsub-throughput.svg", "pubsub-throughput.png",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(f) {
		case ".png":
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if r := img.Bounds(); r.Dx() < 100 || r.Dy() < 100 {
				t.Errorf("%s: %v image", f, r)
			}
		case ".svg":
			checkSVG(t, f, b)
		}
	}
}

// checkSVG fails unless b is well-formed XML whose root element is svg
// and that names the systems it draws.
func checkSVG(t *testing.T, name string, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			if root == "" || err.Error() != "EOF" {
				t.Fatalf("%s: %v (root %q)", name, err, root)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" || !bytes.Contains(b, []byte("felix")) {
		t.Errorf("%s: root %q, mentions felix: %v", name, root, bytes.Contains(b, []byte("felix")))
	}
}

func TestMergeRoundsTakesMedians(t *testing.T) {
	rows := []Row{
		{Case: "a", System: "felix", Latency: lat(100), Rate: 10, Drops: 0},
		{Case: "b", System: "felix", Latency: lat(7), Rate: 7},
		{Case: "a", System: "felix", Latency: lat(300), Rate: 30, Drops: 5},
		{Case: "a", System: "felix", Latency: lat(200), Rate: 20, Drops: 1},
	}
	m := MergeRounds(rows)
	if len(m) != 2 || m[0].Case != "a" || m[1].Case != "b" {
		t.Fatalf("merged %+v", m)
	}
	a := m[0]
	if a.Latency.P50 != 200 || a.Latency.Max != 1000 || a.Rate != 20 || a.Drops != 5 || a.Round != 3 || a.Latency.Count != 300 {
		t.Errorf("merged a %+v", a)
	}
	if got := MergeRounds(rows[:2:2]); got[0].Rate != 10 {
		t.Errorf("one round %+v", got)
	}
	even := MergeRounds([]Row{{Case: "x", Rate: 1}, {Case: "x", Rate: 4}})
	if even[0].Rate != 2.5 {
		t.Errorf("even median %v", even[0].Rate)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"fanout=1 payload=256 batch=1 rate=max": "fanout-1-payload-256-batch-1-rate-max",
		"get conc=32 value=256":                 "get-conc-32-value-256",
		" ==":                                   "case",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}
