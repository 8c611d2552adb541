package queue

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// The examples in the package doc.
func TestStateGoldenVectors(t *testing.T) {
	snap := snapshot{name: "g", floor: 5, cursor: 9, pending: []pendingRec{{off: 7, attempts: 2}}}
	ops := []op{{kind: opAck, off: 7}, {kind: opAck, off: 8}, {kind: opDelivered, off: 9, attempts: 1}}
	for _, c := range []struct {
		got  []byte
		want string
	}{
		{appendSnapshot(nil, &snap), "010101670504010202"},
		{appendOps(nil, 0, ops), "02010001" + "0e010203" + "0201"},
	} {
		if h := hex.EncodeToString(c.got); h != c.want {
			t.Errorf("got %s, want %s", h, c.want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	snap := snapshot{name: "orders", floor: 1 << 40, cursor: 1<<40 + 1000,
		pending: []pendingRec{{1 << 40, 0}, {1<<40 + 1, 7}, {1<<40 + 999, maxAttemptsEncoded}}}
	r, err := decodeState(appendSnapshot(nil, &snap))
	if err != nil || r.kind != recSnapshot || !reflect.DeepEqual(r.snap, snap) {
		t.Fatalf("snapshot: %+v %v", r, err)
	}
	ops := []op{{opDelivered, 100, 3}, {opAck, 2, 0}, {opDead, 1 << 62, 0}, {opAck, 0, 0}}
	r, err = decodeState(appendOps(nil, 42, ops))
	if err != nil || r.kind != recOps || r.ref != 42 || !reflect.DeepEqual(r.ops, ops) {
		t.Fatalf("ops: %+v %v", r, err)
	}
}

func TestStateDecodeRejects(t *testing.T) {
	for name, h := range map[string]string{
		"empty":                "",
		"unknown type":         "0301",
		"unknown version":      "0102",
		"truncated snapshot":   "01010167",
		"pending at cursor":    "010101670504010402",
		"pending out of order": "01010167050402020100" + "02",
		"too many pending":     "0101016705040501",
		"unknown op":           "0201000902",
		"delivered attempt 0":  "0201000302" + "00",
		"trailing bytes":       "010101670500" + "0000",
	} {
		p, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeState(p); err == nil {
			t.Errorf("%s (%s): decoded", name, h)
		}
	}
}

// Replaying the ops records after a snapshot in any order, or twice,
// gives the same state.
func TestReplayOrderDoesNotMatter(t *testing.T) {
	snap := snapshot{name: "g", floor: 10, cursor: 20, pending: []pendingRec{{10, 1}, {12, 2}, {15, 1}, {19, 4}}}
	records := [][]op{
		{{opAck, 10, 0}, {opDelivered, 12, 3}},
		{{opDelivered, 20, 1}, {opDelivered, 21, 1}, {opDelivered, 22, 1}, {opDelivered, 24, 2}},
		{{opAck, 21, 0}, {opDelivered, 12, 2}, {opDead, 15, 0}},
		{{opDelivered, 21, 2}, {opAck, 3, 0}, {opDelivered, 23, 1}},
		{{opDelivered, 19, 5}, {opAck, 24, 0}},
	}
	want := &rebuilt{floor: 12, cursor: 25, pending: map[uint64]int{12: 3, 19: 5, 20: 1, 22: 1, 23: 1}, records: 5}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		r := newRebuilt(&snap, 0)
		order := rng.Perm(len(records))
		if trial%2 == 1 {
			order = append(order, order[:2]...) // repeats
		}
		for _, i := range order {
			r.apply(records[i])
		}
		r.finish(math.MaxUint64)
		if r.floor != want.floor || r.cursor != want.cursor || !reflect.DeepEqual(r.pending, want.pending) {
			t.Fatalf("order %v: floor %d cursor %d pending %v, want %d %d %v", order, r.floor, r.cursor, r.pending,
				want.floor, want.cursor, want.pending)
		}
	}
}

// Decoding never panics, and what decodes encodes back to the same bytes.
func FuzzDecodeState(f *testing.F) {
	f.Add(appendSnapshot(nil, &snapshot{name: "g", floor: 5, cursor: 9, pending: []pendingRec{{7, 2}}}))
	f.Add(appendOps(nil, 3, []op{{opAck, 7, 0}, {opDead, 1, 0}, {opDelivered, 9, 1}}))
	f.Add([]byte{1, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeState(p)
		if err != nil {
			return
		}
		var again []byte
		if r.kind == recSnapshot {
			again = appendSnapshot(nil, &r.snap)
		} else {
			again = appendOps(nil, r.ref, r.ops)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", p, r, again)
		}
	})
}
