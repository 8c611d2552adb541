package server

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/felixmq/felix/broker"
)

func newLimitServer(t *testing.T, l TenantLimits) *Server {
	t.Helper()
	s, err := New(Options{Broker: broker.New(broker.Options{}), TLS: &tls.Config{}, Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Server) tenantEntries() int {
	s.tenants.mu.Lock()
	defer s.tenants.mu.Unlock()
	return len(s.tenants.use)
}

// A stream whose auth completes after its connection ended (serve has
// already released the connection's tenants) must not count the
// connection against the tenant: nothing would ever release it, and with
// MaxConnections the tenant would be locked out for good.
func TestTenantConnNotCountedAfterConnectionEnded(t *testing.T) {
	s := newLimitServer(t, TenantLimits{MaxConnections: 1})
	gone := &conn{s: s}
	gone.releaseTenants() // serve's end, before a slow auth of one of its streams returns
	if _, err := gone.useTenant("t1"); err == nil {
		t.Fatal("a connection that ended was counted against its tenant")
	}
	live := &conn{s: s}
	if _, err := live.useTenant("t1"); err != nil {
		t.Fatalf("the tenant's only connection slot leaked: %v", err)
	}
	live.releaseTenants()
}

// Usage records of tenants with nothing live are dropped: clients naming
// tenants at will (dev mode, or many tokens) cannot grow memory without
// bound. A record whose publish bucket is not full is kept, so a tenant
// cannot refill its bucket by reconnecting.
func TestTenantUsageRecordsAreFreed(t *testing.T) {
	s := newLimitServer(t, TenantLimits{})
	for i := range 1000 {
		c := &conn{s: s}
		u, err := c.useTenant(fmt.Sprint("tenant-", i))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // a subscription that outlives its connection's release
			if err := s.tenants.acquireSub(u); err != nil {
				t.Fatal(err)
			}
			c.releaseTenants()
			s.tenants.releaseSub(u)
		} else {
			c.releaseTenants()
		}
	}
	if n := s.tenantEntries(); n != 0 {
		t.Fatalf("%d tenant usage records left after every connection ended", n)
	}

	now := time.Unix(1000, 0)
	s = newLimitServer(t, TenantLimits{PublishBytesPerSec: 100, PublishBurstBytes: 100})
	s.tenants.now = func() time.Time { return now }
	c := &conn{s: s}
	u, _ := c.useTenant("t1")
	if err := s.tenants.allowPublish(u, [][]byte{make([]byte, 100)}); err != nil {
		t.Fatal(err)
	}
	c.releaseTenants()
	c = &conn{s: s}
	u, _ = c.useTenant("t1")
	if err := s.tenants.allowPublish(u, [][]byte{make([]byte, 50)}); err == nil {
		t.Fatal("reconnecting refilled the tenant's publish bucket")
	}
	now = now.Add(time.Minute) // the bucket refills
	c.releaseTenants()
	if n := s.tenantEntries(); n != 0 {
		t.Fatalf("%d tenant usage records left with full buckets", n)
	}
}
