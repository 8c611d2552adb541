package metrics

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/felixmq/felix/client"
	"github.com/felixmq/felix/diskfree"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/internal/testbrowser"
)

// cellValue reads the raw value (data-value) of the page's cell at css.
func cellValue(t *testing.T, bctx context.Context, css string) uint64 {
	t.Helper()
	v, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(css), "data-value"))
	if err != nil {
		t.Fatalf("read %s: %v", css, err)
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if !v.Exists || err != nil {
		t.Fatalf("%s: data-value %q (present %v)", css, v.Value, v.Exists)
	}
	return n
}

// The dashboard in a real browser shows a stream created by the test, and
// its published count rises while a publisher runs.
func TestDashboardInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := testbrowser.Start(t, ctx)

	tb := testbroker.Start(t)
	if _, err := tb.Broker.DeclareStream("default", "browser", "ticks"); err != nil {
		t.Fatal(err)
	}
	// A free-space watch in alarm: 10 MiB free under a 50 MiB floor.
	disk, err := diskfree.Start(diskfree.Options{Dir: "/data", Limit: 50 << 20, Logger: quiet,
		Free: func(string) (uint64, error) { return 10 << 20, nil },
		Tick: func(time.Duration) <-chan time.Time { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server, Caches: tb.Caches, Disk: disk}})
	ms.SetReady(true)

	c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS, PublishConns: 1, EventConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A paced, bounded publisher (at most 30 s at 200 events/s), stopped
	// when the test ends.
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() {
		defer close(pubDone)
		for i := range 6000 {
			if err := c.Publish(pubCtx, "browser", "ticks", []byte(strconv.Itoa(i))); err != nil {
				if pubCtx.Err() == nil {
					pubDone <- err
				}
				return
			}
			select {
			case <-pubCtx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	defer func() {
		stopPub()
		if err := <-pubDone; err != nil {
			t.Errorf("publisher: %v", err)
		}
	}()

	const cell = `tr[data-stream="default/browser/ticks"] td.published`
	read := func() uint64 { t.Helper(); return cellValue(t, bctx, cell) }
	url := fmt.Sprintf("http://%s/", ms.Addr())
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(cell))); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	first := read()
	// The page refreshes every second; wait (bounded by ctx) for a read
	// that shows more events.
	for {
		if n := read(); n > first {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the published count stayed at %d", first)
		case <-time.After(100 * time.Millisecond):
		}
	}
	status, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#status")))
	if err != nil {
		t.Fatal(err)
	}
	if status != "ready" {
		t.Errorf("status badge %q, want ready", status)
	}
	diskText, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#disk.alert")))
	if err != nil {
		t.Fatalf("the disk card flagged as an alarm: %v", err)
	}
	if diskText != "10.0 MiB (50.0 MiB) ALARM: durable writes refused" {
		t.Errorf("disk card %q", diskText)
	}
}

// The dashboard in a real browser shows the request/reply services: one
// served by an SDK client with its responder and answered requests, and
// one nobody serves, flagged with its refused request.
func TestDashboardServicesInBrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := testbrowser.Start(t, ctx)

	tb := testbroker.Start(t)
	ms := startServer(t, Options{Sources: Sources{Broker: tb.Broker, Server: tb.Server}})
	ms.SetReady(true)
	c, err := client.Dial(ctx, tb.Addr, client.Options{TLS: tb.ClientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer askEcho(t, ctx, c, "browser", 3).Close()

	const echo, nobody = `tr[data-service="default/browser/echo"]`, `tr[data-service="default/browser/nobody"]`
	if err := chromedp.Do(bctx, chromedp.Navigate(fmt.Sprintf("http://%s/", ms.Addr())),
		chromedp.WaitVisible(chromedp.CSS(echo)), chromedp.WaitVisible(chromedp.CSS(nobody))); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	for css, want := range map[string]uint64{
		echo + " td.responders": 1, echo + " td.requests": 3, echo + " td.replies": 3, echo + " td.in-flight": 0,
		echo + " td.no-responders": 0, nobody + " td.responders": 0, nobody + " td.no-responders": 1,
	} {
		if got := cellValue(t, bctx, css); got != want {
			t.Errorf("%s = %d, want %d", css, got, want)
		}
	}
	name, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(nobody+" td.name")))
	if err != nil || name != "default/browser/nobody" {
		t.Errorf("nobody's name cell %q: %v", name, err)
	}
	// The refused request and the missing responder are flagged.
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(nobody+" td.no-responders.alert")),
		chromedp.WaitVisible(chromedp.CSS(nobody+" td.responders.alert"))); err != nil {
		t.Errorf("nobody's row not flagged: %v", err)
	}
}
