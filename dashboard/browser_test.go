package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/felixmq/felix/internal/testbrowser"
)

// fakeBroker serves the dashboard and an /api/overview answering the
// document in doc; while hang is set, /api/overview answers nothing
// until the request (or the test) ends.
type fakeBroker struct {
	doc    atomic.Pointer[string]
	hang   atomic.Bool
	served atomic.Int64 // overview requests
	done   chan struct{}
	url    string
}

func startFake(t *testing.T, doc string) *fakeBroker {
	t.Helper()
	f := &fakeBroker{done: make(chan struct{})}
	f.doc.Store(&doc)
	mux := http.NewServeMux()
	mux.Handle("GET /", Handler())
	mux.HandleFunc("GET /api/overview", func(w http.ResponseWriter, r *http.Request) {
		f.served.Add(1)
		if f.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-f.done:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(*f.doc.Load()))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.done) }) // runs first: frees hung requests
	f.url = srv.URL + "/"
	return f
}

// eval evaluates expr in the page.
func eval[T any](t *testing.T, bctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(bctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls expr (a boolean) until it holds, failing at ctx's end.
func waitFor(t *testing.T, ctx, bctx context.Context, expr string) {
	t.Helper()
	for !eval[bool](t, bctx, expr) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never held", expr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

const overviewHead = `"time":"2025-01-01T00:00:00Z","uptime_seconds":5,"status":"ready",` +
	`"connections":{"open":1,"total":2,"subscriptions":0},"truncated":false`

// Every consumer group gets exactly one row, refresh after refresh, also
// when the names of two (stream, group) pairs joined with '#' read the
// same ('#' is allowed in names): keyed that way, each refresh reused one
// of the two rows, made a new one and left the other in the table, which
// grew by a row a second. Names are shown as text, never parsed as HTML.
func TestGroupRowsDoNotCollide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := testbrowser.Start(t, ctx)
	const evil = `<img src=x onerror=window.pwned=1>`
	f := startFake(t, `{`+overviewHead+`,
		"streams":[{"tenant":"t","namespace":"n","stream":"`+evil+`"}],
		"subscribers":[],"caches":[],"services":[],
		"groups":[
			{"tenant":"t","namespace":"n","stream":"s#x","group":"g","members":1},
			{"tenant":"t","namespace":"n","stream":"s","group":"x#g","members":2}]}`)
	if err := chromedp.Do(bctx, chromedp.Navigate(f.url), chromedp.WaitVisible(chromedp.CSS(`#streams td.name`))); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	// The page asks again only after it showed the last answer: at the
	// 4th request, 3 answers were rendered.
	for f.served.Load() < 4 {
		select {
		case <-ctx.Done():
			t.Fatal("the page stopped polling")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := eval[int](t, bctx, `document.querySelectorAll("#groups tbody tr").length`); n != 2 {
		t.Errorf("%d group rows, want 2 (s#x/g and s/x#g)", n)
	}
	if got := eval[string](t, bctx, `document.querySelector("#streams td.name").textContent`); got != "t/n/"+evil {
		t.Errorf("stream name cell %q", got)
	}
	if n := eval[int](t, bctx, `document.querySelectorAll("img").length`); n != 0 {
		t.Errorf("a stream's name became %d <img> elements", n)
	}
}

// A document whose lists are null (Go's nil slices: a broker with no
// data that does not fill them in) is shown as empty tables, not as a
// broker that cannot be reached.
func TestOverviewWithNullLists(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := testbrowser.Start(t, ctx)
	f := startFake(t, `{`+overviewHead+`,"streams":null,"subscribers":null,"groups":null,"caches":null,"services":null}`)
	if err := chromedp.Do(bctx, chromedp.Navigate(f.url)); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	// The badge leaves "connecting…" at the first answer, either way.
	waitFor(t, ctx, bctx, `document.getElementById("status").textContent !== "connecting…"`)
	if got := eval[string](t, bctx, `document.getElementById("status").textContent`); got != "ready" {
		t.Errorf("status badge %q, want ready", got)
	}
	if got := eval[string](t, bctx, `document.getElementById("stream-count").textContent`); got != "0" {
		t.Errorf("stream count %q, want 0", got)
	}
}

// A broker that stops answering (hung, or the network between dropped)
// is shown as unreachable: a poll that gets no answer is given up, not
// waited for forever with the last answer on screen as if current.
func TestHungBrokerShownUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := testbrowser.Start(t, ctx)
	f := startFake(t, `{`+overviewHead+`,"streams":[],"subscribers":[],"groups":[],"caches":[],"services":[]}`)
	if err := chromedp.Do(bctx, chromedp.Navigate(f.url)); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	waitFor(t, ctx, bctx, `document.getElementById("status").textContent === "ready"`)
	f.hang.Store(true)
	waitFor(t, ctx, bctx, `document.getElementById("status").textContent === "unreachable"`)
}
