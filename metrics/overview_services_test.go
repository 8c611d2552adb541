package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testclock"
	"github.com/felixmq/felix/internal/testwait"
)

// serviceIn returns the overview's row of default/default/name.
func serviceIn(o Overview, name string) (ServiceView, bool) {
	for _, sv := range o.Services {
		if sv.Tenant == "default" && sv.Namespace == "default" && sv.Service == name {
			return sv, true
		}
	}
	return ServiceView{}, false
}

// The overview lists request/reply services served by real SDK clients,
// with their responders, requests in flight, results and request rate; a
// service nobody serves shows with its no_responders, one whose
// responder left keeps its counters.
func TestOverviewServices(t *testing.T) {
	clock := testclock.New()
	tb := testbroker.Start(t)
	ms := startServer(t, Options{Clock: clock.Now, Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	ms.SetReady(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	echo := askEcho(t, ctx, c, "default", 3)
	defer echo.Close()
	flaky, err := c.Serve(ctx, "default", "flaky", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("boom") })
	if err != nil {
		t.Fatal(err)
	}
	defer flaky.Close()
	release := make(chan struct{})
	slow, err := c.Serve(ctx, "default", "slow", func(context.Context, []byte) ([]byte, error) { <-release; return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	request := func(name string) error {
		_, err := c.Request(ctx, "default", name, []byte("x"))
		return err
	}
	var re *client.ResponderError
	if err := request("flaky"); !errors.As(err, &re) || re.Message != "boom" {
		t.Fatalf("request to flaky: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.Request(short, "default", "slow", nil)
	cancelShort()
	if !errors.Is(err, client.ErrRequestTimeout) {
		t.Fatalf("request to slow: %v", err)
	}
	// The broker's timer fails the request; the handler still holds it.
	var o Overview
	testwait.Eventually(t, "slow's timeout in the overview", func() bool {
		o = overviewOf(t, ms)
		sv, _ := serviceIn(o, "slow")
		return sv.Timeouts == 1
	})
	for _, want := range []ServiceView{
		{Service: "echo", Responders: 1, Requests: 3, Replies: 3},
		{Service: "flaky", Responders: 1, Requests: 1, ResponderErrors: 1},
		{Service: "nobody", NoResponders: 1},
		{Service: "slow", Responders: 1, InFlight: 1, Requests: 1, Timeouts: 1},
	} {
		want.Tenant, want.Namespace = "default", "default"
		if sv, _ := serviceIn(o, want.Service); sv != want {
			t.Errorf("%s: %+v, want %+v", want.Service, sv, want)
		}
	}
	if len(o.Services) != 4 || o.Services[0].Service != "echo" || o.Services[3].Service != "slow" || o.Truncated {
		t.Fatalf("services (sorted by name): %+v", o.Services)
	}
	close(release)
	released = true
	testwait.Eventually(t, "slow's late answer frees its place", func() bool {
		sv, _ := serviceIn(overviewOf(t, ms), "slow")
		return sv.InFlight == 0
	})

	// 4 requests over 2 s (the injected clock): 2 requests/s.
	clock.Advance(2 * time.Second)
	for range 4 {
		if err := request("echo"); err != nil {
			t.Fatal(err)
		}
	}
	if sv, _ := serviceIn(overviewOf(t, ms), "echo"); sv.RequestRate != 2 || sv.Requests != 7 {
		t.Fatalf("echo after 4 more requests in 2 s: %+v", sv)
	}

	// A service whose responder left keeps its counters.
	if err := echo.Close(); err != nil {
		t.Fatal(err)
	}
	testwait.Eventually(t, "echo without its responder", func() bool {
		sv, ok := serviceIn(overviewOf(t, ms), "echo")
		return ok && sv.Responders == 0 && sv.Requests == 7 && sv.Replies == 7
	})
}
