package controlplane

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The change feed's cursor is read as strictly as the lists' (?after=):
// a since that does not parse, or is given twice, is 400
// validation_error naming it, never read as 0, which would replay the
// feed from its start to a reader that asked for the changes after N
// (and so is limit).
func TestHunt13ChangesCursorReadStrictly(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	for i := range 5 {
		must[Tenant](t)(st.CreateTenant(Tenant{TenantID: fmt.Sprint("t", i)}))
	}
	c := newClient(t, startAPI(t, st))
	var p ChangesPage
	c.must("GET", "/v1/changes?since=4", nil, 200, &p)
	if len(p.Items) != 2 || p.Items[0].Seq != 4 {
		t.Fatalf("since=4: %+v", p)
	}
	for _, q := range []string{
		"since=%zz", "since=4&since=1", "since=4;limit=1", "since=4&limit=%zz", "since=4&limit=1&limit=2",
	} {
		eb := c.wantError("GET", "/v1/changes?"+q, nil, 400, codeValidation)
		if !strings.Contains(eb.Message, "since") && !strings.Contains(eb.Message, "limit") && !strings.Contains(eb.Message, "query") {
			t.Fatalf("?%s: message %q names no parameter", q, eb.Message)
		}
	}
}

// Pages of a list read while other clients create and delete items in it
// never skip an item that existed for the whole listing, never return an
// item twice and always end: the names are taken so that creations and
// deletions fall before, inside and after the cursor.
func TestHunt13PagingUnderConcurrentChanges(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "t"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
	// Names with characters that need escaping in a query and sort around
	// the separator '/': '-', '.', '~', '%', '+', '&', '=', UTF-8.
	var stable []string
	for i := range 60 {
		name := fmt.Sprintf("s%02d%s", i, []string{"-a", ".b", "~c", "%d", "+e", "&f=g", "é"}[i%7])
		stable = append(stable, name)
		if _, err := st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: name}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, startAPI(t, st))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("s%02d~w%d-%d", i%61, w, i%5)
				if _, err := st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: name}); err != nil {
					t.Error(err)
					return
				}
				if err := st.DeleteStream(StreamKey{"t", "n", name}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for round := range 10 {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 200 {
				t.Fatalf("round %d: the listing does not end", round)
			}
			q := url.Values{"limit": {fmt.Sprint(1 + round)}}
			if after != "" {
				q.Set("after", after)
			}
			var p Page[Stream]
			c.must("GET", "/v1/tenants/t/namespaces/n/streams?"+q.Encode(), nil, 200, &p)
			for _, s := range p.Items {
				got = append(got, s.Stream)
			}
			if p.Next == "" {
				break
			}
			after = p.Next
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("round %d: not sorted and unique: %q", round, got)
		}
		for _, s := range stable {
			if !slices.Contains(got, s) {
				t.Fatalf("round %d: %q, there all along, was skipped", round, s)
			}
		}
	}
}

// Bad bodies (not JSON, wrong types, out-of-range numbers, trailing
// data, unknown fields, a patch making an object invalid) are each 400
// validation_error, a body over the limit 413 too_large, and they change
// nothing: the snapshot and the change feed's head are as before.
func TestHunt13BadBodiesChangeNothing(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	must[Tenant](t)(st.CreateTenant(Tenant{TenantID: "t"}))
	must[Namespace](t)(st.CreateNamespace(Namespace{TenantID: "t", Namespace: "n"}))
	must[Stream](t)(st.CreateStream(Stream{TenantID: "t", Namespace: "n", Stream: "s"}))
	must[Cache](t)(st.CreateCache(Cache{TenantID: "t", Namespace: "n", Cache: "c", CapacityBytes: 100}))
	c := newClient(t, startAPI(t, st))
	var before Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &before)
	const streams, caches = "/v1/tenants/t/namespaces/n/streams", "/v1/tenants/t/namespaces/n/caches"
	for _, b := range []struct{ method, path, body string }{
		{"POST", "/v1/tenants", `{"tenant_id":`},
		{"POST", "/v1/tenants", `{"tenant_id":7}`},
		{"POST", "/v1/tenants", `["t2"]`},
		{"POST", "/v1/tenants", `{"tenant_id":"t2"} {"tenant_id":"t3"}`},
		{"POST", "/v1/tenants", `{"tenant_id":"t2","extra":1}`},
		{"POST", streams, `{"stream":"s2","shards":"3"}`},
		{"POST", streams, `{"stream":"s2","shards":1e20}`},
		{"POST", streams, `{"stream":"s2","shards":1.5}`},
		{"POST", streams, `{"stream":"s2","durable":"yes"}`},
		{"POST", streams, `{"stream":"s2","retention":{"max_age_seconds":-1}}`},
		{"POST", streams, `{"stream":"s2","retention":{"max_size_bytes":"1GB"}}`},
		{"POST", streams, `{"stream":"s2","fsync":"sometimes"}`},
		{"POST", caches, `{"cache":"c2","capacity_bytes":-1}`},
		{"POST", caches, `{"cache":"c2","capacity_bytes":99999999999999999999}`},
		{"PATCH", streams + "/s", `{"fsync":"sometimes"}`},
		{"PATCH", streams + "/s", `{"retention":{"max_age_seconds":1e30}}`},
		{"PATCH", streams + "/s", `{"shards":4}`},
		{"PATCH", caches + "/c", `{"capacity_bytes":-5}`},
		{"PATCH", caches + "/c", `{"durable":null,"capacity_bytes":"x"}`},
		{"PATCH", caches + "/c", `{"display_name":"` + strings.Repeat("x", 2000) + `"}`},
		{"POST", "/v1/tenants", `{"tenant_id":"t2","TENANT_ID":"t3"}`},
		{"PATCH", caches + "/c", `null`},
	} {
		c.wantError(b.method, b.path, b.body, 400, codeValidation)
	}
	c.wantError("POST", "/v1/tenants", `{"tenant_id":"t2","display_name":"`+strings.Repeat("x", 2<<20)+`"}`, 413, codeTooLarge)
	var after Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &after)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("bad bodies changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
}

// The change feed replayed from its start, paged, rebuilds exactly what
// the lists and the snapshot hold, after random creates, updates and
// deletes of every kind (cascading deletes of namespaces and tenants
// included), as the snapshot does, and the snapshot's next_seq is where
// the feed ends.
func TestHunt13FeedReplaysToTheLists(t *testing.T) {
	st := openTestStore(t, t.TempDir(), StoreOptions{})
	c := newClient(t, startAPI(t, st))
	rng := rand.New(rand.NewPCG(13, 13))
	pick := func(n int) string { return fmt.Sprint(rng.IntN(n)) }
	for range 600 {
		tn, ns, leaf := "t"+pick(3), "n"+pick(3), "x"+pick(4)
		base := "/v1/tenants/" + tn + "/namespaces/" + ns
		switch r := rng.IntN(100); {
		case r < 10:
			c.call("POST", "/v1/tenants", map[string]any{"tenant_id": tn})
		case r < 25:
			c.call("POST", "/v1/tenants/"+tn+"/namespaces", map[string]any{"namespace": ns})
		case r < 45:
			c.call("POST", base+"/streams", map[string]any{"stream": leaf, "durable": rng.IntN(2) == 0})
		case r < 60:
			c.call("POST", base+"/caches", map[string]any{"cache": leaf, "capacity_bytes": rng.IntN(1000)})
		case r < 70:
			c.call("PATCH", base+"/streams/"+leaf, map[string]any{"fsync": []string{"always", "never"}[rng.IntN(2)]})
		case r < 80:
			c.call("PATCH", base+"/caches/"+leaf, map[string]any{"capacity_bytes": rng.IntN(1000)})
		case r < 92:
			c.call("DELETE", base+"/"+[]string{"streams", "caches"}[rng.IntN(2)]+"/"+leaf, nil)
		case r < 98:
			c.call("DELETE", base, nil)
		default:
			c.call("DELETE", "/v1/tenants/"+tn, nil)
		}
	}
	state := map[string]string{} // kind + key → object JSON
	var next uint64
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("the feed does not end")
		}
		var p ChangesPage
		c.must("GET", fmt.Sprintf("/v1/changes?since=%d&limit=37", next), nil, 200, &p)
		for _, ch := range p.Items {
			if ch.Seq < next {
				t.Fatalf("change %d after asking since %d", ch.Seq, next)
			}
			k := ch.Kind + " " + ch.Key.TenantID + "/" + ch.Key.Namespace + "/" + ch.Key.Stream + ch.Key.Cache
			if ch.Op == OpDeleted {
				if _, ok := state[k]; !ok {
					t.Fatalf("change %d deletes %s, which the feed never created", ch.Seq, k)
				}
				delete(state, k)
			} else {
				state[k] = string(ch.Object)
			}
		}
		next = p.NextSeq
		if !p.More {
			break
		}
	}
	var snap Snapshot
	c.must("GET", "/v1/snapshot", nil, 200, &snap)
	if snap.NextSeq != next {
		t.Fatalf("snapshot next_seq %d, feed ends at %d", snap.NextSeq, next)
	}
	want := map[string]string{}
	add := func(kind string, key Key, obj any) {
		b, _ := json.Marshal(obj)
		want[kind+" "+key.TenantID+"/"+key.Namespace+"/"+key.Stream+key.Cache] = string(b)
	}
	// What the lists hold.
	var ts Page[Tenant]
	c.must("GET", "/v1/tenants", nil, 200, &ts)
	for _, x := range ts.Items {
		add(ObjectTenant, Key{TenantID: x.TenantID}, x)
		var p Page[Namespace]
		c.must("GET", "/v1/tenants/"+x.TenantID+"/namespaces", nil, 200, &p)
		for _, n := range p.Items {
			add(ObjectNamespace, n.Key().changeKey(), n)
			var ss Page[Stream]
			c.must("GET", "/v1/tenants/"+x.TenantID+"/namespaces/"+n.Namespace+"/streams", nil, 200, &ss)
			for _, y := range ss.Items {
				add(ObjectStream, y.Key().changeKey(), y)
			}
			var cs Page[Cache]
			c.must("GET", "/v1/tenants/"+x.TenantID+"/namespaces/"+n.Namespace+"/caches", nil, 200, &cs)
			for _, y := range cs.Items {
				add(ObjectCache, y.Key().changeKey(), y)
			}
		}
	}
	if n := len(snap.Tenants) + len(snap.Namespaces) + len(snap.Streams) + len(snap.Caches); n != len(want) {
		t.Fatalf("the snapshot holds %d objects, the lists %d", n, len(want))
	}
	if len(want) < 5 {
		t.Fatalf("only %d objects at the end: the operations did too little", len(want))
	}
	if len(state) != len(want) {
		t.Fatalf("the feed rebuilds %d objects, the lists hold %d", len(state), len(want))
	}
	for k, w := range want {
		if state[k] != w {
			t.Fatalf("%s: feed %s, lists %s", k, state[k], w)
		}
	}
}
