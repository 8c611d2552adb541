package metrics

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// /live is always ok; /ready goes starting → ok → (not ready) starting →
// ok → draining, and stays draining.
func TestLiveAndReadyTransitions(t *testing.T) {
	s := startServer(t, Options{})
	check := func(path string, code int, body string) {
		t.Helper()
		gotCode, gotBody := get(t, s, path)
		if gotCode != code || strings.TrimSpace(gotBody) != body {
			t.Fatalf("GET %s = %d %q, want %d %q", path, gotCode, gotBody, code, body)
		}
	}
	check("/live", http.StatusOK, "ok")
	check("/ready", http.StatusServiceUnavailable, "starting")
	s.SetReady(true)
	check("/ready", http.StatusOK, "ok")
	s.SetReady(false)
	check("/ready", http.StatusServiceUnavailable, "starting")
	s.SetReady(true)
	check("/ready", http.StatusOK, "ok")
	s.SetDraining()
	check("/ready", http.StatusServiceUnavailable, "draining")
	s.SetReady(true) // draining is final
	check("/ready", http.StatusServiceUnavailable, "draining")
	check("/live", http.StatusOK, "ok")
}

// Shutdown marks draining and stops serving; a second Start is refused.
func TestShutdownStopsServing(t *testing.T) {
	s := New(Options{Addr: "127.0.0.1:0", Logger: quiet})
	if s.Addr() != nil {
		t.Fatal("Addr before Start is not nil")
	}
	if err := s.Shutdown(context.Background()); err != nil { // not started: no-op
		t.Fatal(err)
	}
	s = New(Options{Addr: "127.0.0.1:0", Logger: quiet})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	addr := s.Addr().String()
	s.SetReady(true)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.status() != statusDraining {
		t.Fatalf("status after Shutdown: %v", s.status())
	}
	if resp, err := http.Get("http://" + addr + "/live"); err == nil {
		resp.Body.Close()
		t.Fatal("still serving after Shutdown")
	}
}

// A port in use is a clear error naming the address.
func TestStartAddressInUse(t *testing.T) {
	a := startServer(t, Options{})
	b := New(Options{Addr: a.Addr().String(), Logger: quiet})
	err := b.Start()
	if err == nil || !strings.Contains(err.Error(), a.Addr().String()) {
		t.Fatalf("Start on a used port: %v", err)
	}
}

// The default address is the reference's port on loopback.
func TestDefaultAddr(t *testing.T) {
	if got := New(Options{}).opts.Addr; got != "127.0.0.1:8080" {
		t.Fatalf("default Addr %q", got)
	}
}
