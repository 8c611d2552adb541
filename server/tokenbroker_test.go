package server_test

import (
	"testing"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/commitlog"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
)

// startTokenBroker starts a test broker that requires Felix tokens signed by
// a fresh key and returns it with that key's signer. The tokens are checked
// by v with its Keys set to the signer's (the rest of v, such as Leeway or
// Now, is the caller's). The server runs with so, its Auth set to token auth
// with that verifier; opts are the other testbroker options and must not
// include WithServerOptions (so would replace what it sets).
func startTokenBroker(t testing.TB, v auth.Verifier, so server.Options, opts ...testbroker.Option) (*testbroker.Broker, *auth.Signer) {
	t.Helper()
	sg, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v.Keys = sg.KeySet()
	so.Auth = server.TokenAuth{Verifier: &v}
	opts = append(opts[:len(opts):len(opts)], testbroker.WithServerOptions(so))
	return testbroker.Start(t, opts...), sg
}

// tokenBroker runs a broker that requires Felix tokens (default verifier),
// with the same streams, durable streams (for queues) and caches in tenants
// a and b, and returns it with the tokens' signer.
func tokenBroker(t testing.TB) (*testbroker.Broker, *auth.Signer) {
	t.Helper()
	return startTokenBroker(t, auth.Verifier{}, server.Options{},
		testbroker.WithStreams("a/ns/s", "b/ns/s"),
		testbroker.WithDurableStreams(t.TempDir(), commitlog.Options{}, "a/ns/q", "b/ns/q"),
		testbroker.WithCaches(cache.Config{}, "a/ns/c", "b/ns/c"))
}

// issue signs c with sg.
func issue(t testing.TB, sg *auth.Signer, c auth.Claims) string {
	t.Helper()
	tok, err := sg.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
