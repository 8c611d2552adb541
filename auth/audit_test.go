package auth

import (
	"strings"
	"sync"
	"testing"

	"github.com/felixmq/felix/internal/testclock"
)

func TestAuditorLogsAndCounts(t *testing.T) {
	log, logs := testLogger()
	clock := testclock.New()
	a := &Auditor{Log: log, Now: clock.Now}
	a.Deny(Denial{Subject: "alice", Tenant: "t1", Action: ActionStreamPublish,
		Resource: StreamResource("t2", "ns", "s"), Reason: "forbidden"})
	out := logs.String()
	for _, want := range []string{
		"access denied", "subject=alice", "tenant=t1", "action=stream.publish",
		"resource=stream:t2/ns/s", "reason=forbidden", "at=2026-01-02T03:04:05",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Deny(Denial{Action: "auth", Reason: "auth: token expired"})
		}()
	}
	wg.Wait()
	if a.Denials() != 9 {
		t.Errorf("Denials = %d, want 9", a.Denials())
	}
}

// A refused token is logged by its reason only, never by its text.
func TestAuditorNeverLogsToken(t *testing.T) {
	s := newSigner(t)
	tok := mustIssue(t, s, Claims{Tenant: "t1", Subject: "bob"})
	_, err := (&Verifier{Keys: s.KeySet()}).Verify(tok, "t2")
	log, logs := testLogger()
	a := &Auditor{Log: log}
	a.Deny(Denial{Tenant: "t2", Action: "auth", Reason: err.Error()})
	if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), strings.Split(tok, ".")[2]) {
		t.Errorf("token in the audit log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "wrong tenant") {
		t.Errorf("reason missing:\n%s", logs)
	}
}
