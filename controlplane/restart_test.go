package controlplane

import (
	"bytes"
	"context"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
)

// After a restart the broker may hold a durable stream's name in memory
// first (a --stream flag, an auto-create) while its log from the earlier
// run is on disk. The control plane's flip to durable opens that log; it
// used to delete the directory, records and all, as if it were the
// in-memory stream's own.
func TestApplierFlipToDurableKeepsTheLogOnDisk(t *testing.T) {
	rig := newBrokerRig(t)
	k := broker.StreamKey{Tenant: "acme", Namespace: "orders", Stream: "created"}
	lg, err := commitlog.Open(StreamDir(rig.dataDir, k), commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	writeRecords(t, lg, 3)
	if _, err := rig.b.DeclareStream(k.Tenant, k.Namespace, k.Stream); err != nil {
		t.Fatal(err)
	}
	if err := rig.applier.EnsureStream(Stream{TenantID: k.Tenant, Namespace: k.Namespace, Stream: k.Stream, Durable: true, Fsync: "never"}); err != nil {
		t.Fatal(err)
	}
	st := rig.stream(k.Tenant, k.Namespace, k.Stream)
	if st == nil || !st.IsDurable() || st.Tail() != 3 {
		t.Fatalf("after the flip: %v, want the durable stream with its 3 records", st)
	}
}

// writeRecords appends n records of 40 bytes to lg and closes it.
func writeRecords(t *testing.T, lg *commitlog.DiskLog, n int) {
	t.Helper()
	for range n {
		if _, err := lg.Append(context.Background(), [][]byte{bytes.Repeat([]byte("x"), 40)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}
}

// A durable stream's retention is the control plane's; changing it on a
// stream with data takes a broker restart. The lowered retention then
// applies when the log is opened, not a minute later at the log's first
// background pass.
func TestApplierOpensWithRetentionApplied(t *testing.T) {
	rig := newBrokerRig(t)
	rig.applier.opts.Log.SegmentBytes = 1024
	k := broker.StreamKey{Tenant: "acme", Namespace: "orders", Stream: "created"}
	lg, err := commitlog.Open(StreamDir(rig.dataDir, k), commitlog.Options{Logger: quiet, SegmentBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	writeRecords(t, lg, 200)
	limit := int64(4096)
	if err := rig.applier.EnsureStream(Stream{TenantID: k.Tenant, Namespace: k.Namespace, Stream: k.Stream, Durable: true, Fsync: "never",
		Retention: Retention{MaxSizeBytes: &limit}}); err != nil {
		t.Fatal(err)
	}
	st := rig.stream(k.Tenant, k.Namespace, k.Stream)
	if oldest := st.Log().Oldest(); oldest < 150 {
		t.Fatalf("oldest retained offset %d with a 4096-byte retention (about 60 records), want ≥ 150", oldest)
	}
}
