package server_test

import (
	"testing"

	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// An auth refused by the tenant's connection limit is an auth failure
// (Counters.AuthFailures: "bad token, tenant limits"; the metric counts
// streams refused at the auth handshake), besides the limit's own count.
func TestTenantLimitRefusalIsAnAuthFailure(t *testing.T) {
	tb := startLimited(t, server.Options{Limits: server.TenantLimits{MaxConnections: 1}})
	dialRaw(t, tb).open().auth("t1", nil)
	s := dialRaw(t, tb).open()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "dev"})
	s.expectJSON(`{"type":"error","message":"tenant connection limit exceeded (1)"}`)
	s.expectEnd()
	if n := tb.Server.LimitStats().Connections.Load(); n != 1 {
		t.Fatalf("limit refusals %d, want 1", n)
	}
	if n := tb.Server.Stats().AuthFailures.Load(); n != 1 {
		t.Fatalf("auth failures %d, want 1", n)
	}
}
