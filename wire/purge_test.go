package wire

import (
	"reflect"
	"strings"
	"testing"
)

func init() {
	// The management extension's vectors (gen_vectors.py), by hand.
	for name, m := range map[string]Message{
		"ext_auth_purge":    &Auth{TenantID: "t1", Token: "tok", ClientFlags: U16(KnownFlags | CapManage)},
		"ext_auth_ok_purge": &AuthOK{ServerFlags: ServerFlagsFor(KnownFlags | CapManage)},
		"ext_stream_purge":  &StreamPurge{TenantID: "t1", Namespace: "default", Stream: "orders", RequestID: 12},
		"ext_stream_purged": &StreamPurged{RequestID: 12, Purged: 4711, Offset: 9000},
		"ext_stream_error":  &StreamError{RequestID: 13, Code: StreamCodeNotFound, Message: "stream not found: t1/default/nope"},
		"ext_queue_join_start": &QueueJoin{TenantID: "t1", Namespace: "default", Stream: "orders", Group: "audit",
			Start: &StartPosition{Kind: StartLatest}},
		"ext_queue_join_start_time": &QueueJoin{TenantID: "t1", Namespace: "default", Stream: "orders", Group: "audit",
			Prefetch: U64(8), Start: &StartPosition{Kind: StartTime, TimeMs: 1796083200000}},
		"ext_cache_flush":   &CacheFlush{TenantID: "t1", Namespace: "default", Cache: "sessions", RequestID: 14},
		"ext_cache_flushed": &CacheFlushed{RequestID: 14, Removed: 250},
	} {
		expectedMessages[name] = m
	}
}

func TestCapManageNegotiation(t *testing.T) {
	if ExtensionCaps&CapManage == 0 || CapManage&KnownFlags != 0 {
		t.Fatalf("CapManage %#x: not an extension bit of its own", CapManage)
	}
	if got := ServerFlagsFor(KnownFlags); got&CapManage != 0 {
		t.Fatalf("granted to a client that did not offer it: %#x", got)
	}
	if got := ServerFlagsFor(KnownFlags | CapManage); got&CapManage == 0 {
		t.Fatalf("not granted to a client that offered it: %#x", got)
	}
}

func TestPurgeMessagesRoundTripAndStrict(t *testing.T) {
	for _, m := range []Message{
		&StreamPurge{TenantID: "t", Namespace: "n", Stream: "s", RequestID: ^uint64(0)},
		&StreamPurged{RequestID: 1, Purged: 0, Offset: ^uint64(0)},
		&StreamError{RequestID: 2, Code: StreamCodeStorage, Message: "q\" \\ \n é"},
		&CacheFlush{TenantID: "t", Namespace: "n", Cache: "c", RequestID: 3},
		&CacheFlushed{RequestID: 4, Removed: ^uint64(0)},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got, err := DecodeMessage(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %s: %#v, %v", b, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{`{"type":"stream_purge","tenant_id":"t","namespace":"n","stream":"s"}`, `missing field "request_id"`},
		{`{"type":"stream_purge","tenant_id":"t","namespace":"n","request_id":1}`, `missing field "stream"`},
		{`{"type":"stream_purged","request_id":1,"purged":-1,"offset":0}`, "purged must be an unsigned integer"},
		{`{"type":"stream_purged","request_id":1,"offset":0}`, `missing field "purged"`},
		{`{"type":"stream_error","request_id":1,"code":"x"}`, `missing field "message"`},
		{`{"type":"cache_flush","tenant_id":"t","namespace":"n","request_id":1}`, `missing field "cache"`},
		{`{"type":"cache_flushed","request_id":1}`, `missing field "removed"`},
	} {
		_, err := DecodeMessage([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.in, err, tc.want)
		}
	}
}
