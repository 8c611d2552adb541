package server_test

import (
	"testing"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// TokenAuth without a verifier refuses every token (and counts it) rather
// than crashing the broker on the first auth frame.
func TestTokenAuthWithoutVerifierRefuses(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithStreams("a/ns/s"),
		testbroker.WithServerOptions(server.Options{Auth: server.TokenAuth{}}))
	sg, _ := auth.GenerateKey()
	tok := issue(t, sg, auth.Claims{Tenant: "a", Subject: "x", Perms: []string{"stream.publish:stream:a/ns/s"}})
	if dialRaw(t, tb).open().authWith("a", tok) {
		t.Fatal("a token authenticated with no verifier configured")
	}
	if n := tb.Server.Stats().AuthFailures.Load(); n != 1 {
		t.Errorf("auth failures counted %d, want 1", n)
	}
}
