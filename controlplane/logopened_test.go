package controlplane

import (
	"errors"
	"testing"

	"github.com/felixmq/felix/broker"
	"github.com/felixmq/felix/commitlog"
)

// LogOpened sees a durable stream's log before the stream is declared (so
// before any publish: serve reconciles queue group state there); its
// error fails the stream's creation, with the log closed.
func TestApplierLogOpenedBeforeTheStreamIsDeclared(t *testing.T) {
	rig := newBrokerRig(t)
	k := broker.StreamKey{Tenant: "acme", Namespace: "orders", Stream: "created"}
	lg, err := commitlog.Open(StreamDir(rig.dataDir, k), commitlog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	writeRecords(t, lg, 3)
	refuse := errors.New("state not reconciled")
	var seen []uint64
	rig.applier.opts.LogOpened = func(got broker.StreamKey, lg commitlog.Log) error {
		if got != k {
			t.Errorf("LogOpened for %v, want %v", got, k)
		}
		if rig.stream(k.Tenant, k.Namespace, k.Stream) != nil {
			t.Error("the stream was declared before LogOpened")
		}
		seen = append(seen, lg.Next())
		if len(seen) == 1 {
			return refuse
		}
		return nil
	}
	s := Stream{TenantID: k.Tenant, Namespace: k.Namespace, Stream: k.Stream, Durable: true, Fsync: "never"}
	if err := rig.applier.EnsureStream(s); !errors.Is(err, refuse) {
		t.Fatalf("EnsureStream: %v, want the LogOpened error", err)
	}
	if rig.stream(k.Tenant, k.Namespace, k.Stream) != nil {
		t.Fatal("the stream was declared although LogOpened failed")
	}
	if err := rig.applier.EnsureStream(s); err != nil { // the log was closed: it opens again
		t.Fatal(err)
	}
	if st := rig.stream(k.Tenant, k.Namespace, k.Stream); st == nil || st.Tail() != 3 || len(seen) != 2 || seen[1] != 3 {
		t.Fatalf("stream %v, LogOpened saw ends %v; want the durable stream with 3 records, ends [3 3]", st, seen)
	}
}
