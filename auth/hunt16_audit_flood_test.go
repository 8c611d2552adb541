package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// Any token, however narrow, can ask for what it may not do as fast as it
// can send (an acked publish refused "forbidden" leaves its stream open):
// one "access denied" line per refusal would let any tenant flood the
// broker's log. The lines are limited as the "auth failed" ones are
// (DefaultDenialLogBurst at once, then DefaultDenialLogRate a second);
// every denial is still counted, and each line says how many were not
// logged since the previous one and how many there were in all.
func TestAuditorLimitsDenialLines(t *testing.T) {
	log, logs := testLogger()
	clock := testclock.New()
	a := &Auditor{Log: log, Now: clock.Now}
	d := Denial{Subject: "mallory", Tenant: "t1", Action: ActionStreamPublish,
		Resource: StreamResource("t1", "ns", "secret"), Reason: "forbidden"}
	for range 1000 {
		a.Deny(d)
	}
	if a.Denials() != 1000 {
		t.Fatalf("Denials = %d, want 1000", a.Denials())
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(logs.String()), "\n") }
	if n := len(lines()); n != DefaultDenialLogBurst {
		t.Fatalf("1000 denials at once wrote %d access-denied lines, want %d", n, DefaultDenialLogBurst)
	}
	clock.Advance(time.Second)
	a.Deny(d)
	all := lines()
	if len(all) != DefaultDenialLogBurst+1 {
		t.Fatalf("after a second: %d lines, want %d", len(all), DefaultDenialLogBurst+1)
	}
	last := all[len(all)-1]
	for _, want := range []string{"access denied", "subject=mallory", "resource=stream:t1/ns/secret", "not_logged=990", "denials_total=1001"} {
		if !strings.Contains(last, want) {
			t.Errorf("line after the pause lacks %q:\n%s", want, last)
		}
	}
	if strings.Contains(all[0], "not_logged") && !strings.Contains(all[0], "not_logged=0") {
		t.Errorf("first line reports denials not logged:\n%s", all[0])
	}
}
