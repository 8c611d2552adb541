package broker

import (
	"context"
	"errors"
	"sort"
	"testing"
)

func TestDeleteNamespaceAndTenant(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	for _, k := range []StreamKey{{"t", "a", "s1"}, {"t", "a", "s2"}, {"t", "b", "s3"}, {"u", "a", "s4"}} {
		if _, err := b.DeclareStream(k.Tenant, k.Namespace, k.Stream); err != nil {
			t.Fatal(err)
		}
	}
	held, _ := b.Stream("t", "a", "s1")
	keys, err := b.DeleteNamespace("t", "a")
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Stream < keys[j].Stream })
	if len(keys) != 2 || keys[0].Stream != "s1" || keys[1].Stream != "s2" {
		t.Fatalf("deleted %v", keys)
	}
	if _, err := held.Publish(context.Background(), [][]byte{[]byte("x")}); !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("publish on a deleted stream: %v", err)
	}
	if _, err := b.Stream("t", "a", "s1"); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("lookup after delete: %v", err)
	}
	if _, err := b.CreateStream("t", "a", "s1"); !errors.Is(err, ErrNamespaceNotFound) {
		t.Fatalf("namespace still there: %v", err)
	}
	if _, err := b.DeleteNamespace("t", "a"); !errors.Is(err, ErrNamespaceNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	keys, err = b.DeleteTenant("t")
	if err != nil || len(keys) != 1 || keys[0] != (StreamKey{"t", "b", "s3"}) {
		t.Fatalf("DeleteTenant = %v, %v", keys, err)
	}
	if _, err := b.DeleteTenant("t"); !errors.Is(err, ErrTenantNotFound) {
		t.Fatalf("second tenant delete: %v", err)
	}
	if _, err := b.Stream("u", "a", "s4"); err != nil {
		t.Fatalf("other tenant touched: %v", err)
	}
}
