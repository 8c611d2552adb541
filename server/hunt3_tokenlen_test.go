package server_test

import (
	"strings"
	"testing"

	"github.com/felixmq/felix/auth"
)

// A token over the verifier's length bound (auth.DefaultMaxTokenBytes) is
// answered as any bad token, "auth failed", and counted as an auth
// failure; a long token under the bound still authenticates.
func TestOversizedTokenAuthFails(t *testing.T) {
	tb, sg := tokenBroker(t)
	c := dialRaw(t, tb)
	perms := []string{"stream.publish:stream:a/ns/s"}
	long := issue(t, sg, auth.Claims{Tenant: "a", Subject: strings.Repeat("x", auth.DefaultMaxTokenBytes/2), Perms: perms})
	if !c.open().authWith("a", long) {
		t.Fatalf("a valid token of %d bytes refused", len(long))
	}
	huge := issue(t, sg, auth.Claims{Tenant: "a", Subject: strings.Repeat("x", auth.DefaultMaxTokenBytes), Perms: perms})
	if c.open().authWith("a", huge) {
		t.Fatalf("a token of %d bytes authenticated (bound %d)", len(huge), auth.DefaultMaxTokenBytes)
	}
	if n := tb.Server.Stats().AuthFailures.Load(); n != 1 {
		t.Errorf("auth failures counted %d, want 1", n)
	}
}
