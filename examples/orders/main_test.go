package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestOrdersDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, options{orders: 120, workers: 3, crashAfter: 10})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for id := range 120 {
		if res.acked[id] != 1 {
			t.Fatalf("order %d acknowledged %d times\n%s", id, res.acked[id], out.String())
		}
	}
	if len(res.stranded) != 5 || len(res.redelivered) != 5 {
		t.Fatalf("stranded %v, redelivered %v", res.stranded, res.redelivered)
	}
	for id, w := range res.redelivered {
		if w == "worker-crash" || w == "" {
			t.Fatalf("order %d finished by %q", id, w)
		}
	}
	if !strings.Contains(out.String(), "120 of 120 orders acknowledged exactly once") {
		t.Fatalf("output:\n%s", out.String())
	}
	t.Log("\n" + out.String())
}
