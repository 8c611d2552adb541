package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/felixmq/felix/client"
)

var quiet = slog.New(slog.DiscardHandler)

// startServer starts a metrics server on a free port, shut down when the
// test ends.
func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = quiet
	}
	s := New(o)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// get fetches path from s and returns the status code and body.
func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// families scrapes /metrics and parses the text format.
type families map[string]*dto.MetricFamily

func scrape(t *testing.T, s *Server) families {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: HTTP %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// find returns the series of name whose labels include want (alternating
// name, value), or nil.
func (f families) find(name string, want ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
outer:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				continue outer
			}
		}
		return m
	}
	return nil
}

// value is the counter or gauge value of a series; the test fails if the
// series is missing.
func (f families) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m := f.find(name, labels...)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// askEcho serves an echo service "echo" in namespace ns with c, sends it
// n requests, and one to "nobody", which nobody serves. The caller closes
// the service.
func askEcho(t *testing.T, ctx context.Context, c *client.Client, ns string, n int) *client.Service {
	t.Helper()
	svc, err := c.Serve(ctx, ns, "echo", func(_ context.Context, req []byte) ([]byte, error) { return req, nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if out, err := c.Request(ctx, ns, "echo", []byte{byte(i)}); err != nil || len(out) != 1 || out[0] != byte(i) {
			svc.Close()
			t.Fatalf("request %d: %v %v", i, out, err)
		}
	}
	if _, err := c.Request(ctx, ns, "nobody", nil); !errors.Is(err, client.ErrNoResponders) {
		svc.Close()
		t.Fatalf("request to nobody: %v", err)
	}
	return svc
}
