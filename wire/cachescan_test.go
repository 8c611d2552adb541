package wire

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// cache_expire, cache_scan and their replies round-trip through the
// codec, including the i64 extremes of ttl_ms (a negative one is the
// broker's to refuse) and keys that need escaping.
func TestCacheExpireScanRoundTrip(t *testing.T) {
	for _, m := range []Message{
		&CacheExpire{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 1, TTLMs: 1},
		&CacheExpire{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 2},
		&CacheExpire{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 3, TTLMs: math.MinInt64},
		&CacheExpire{TenantID: "t", Namespace: "n", Cache: "c", Key: "", RequestID: 4, TTLMs: math.MaxInt64},
		&CacheExpireResult{RequestID: 5, Found: true, Version: math.MaxUint64},
		&CacheExpireResult{RequestID: 6},
		&CacheScan{TenantID: "t", Namespace: "n", Cache: "c", RequestID: 7},
		&CacheScan{TenantID: "t", Namespace: "n", Cache: "c", RequestID: 8, Prefix: "a\"b\\", Cursor: "a\n\x01é", Limit: U64(0)},
		&CacheScan{TenantID: "t", Namespace: "n", Cache: "c", RequestID: 9, Limit: U64(math.MaxUint64)},
		&CacheScanPage{RequestID: 10, Keys: []string{}},
		&CacheScanPage{RequestID: 11, Keys: []string{"", "a", "\u2028\x7f"}, Cursor: "\u2028\x7f"},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("encode %#v: %v", m, err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %s:\n got %#v\nwant %#v", b, got, m)
		}
	}
	// A key that is not UTF-8 is not encodable (the cache never holds one:
	// both encodings of a put refuse it).
	if _, err := EncodeMessage(&CacheScanPage{RequestID: 1, Keys: []string{"\xff"}}); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("page with a non-UTF-8 key: %v", err)
	}
}

func TestCacheExpireScanDecodeAccepts(t *testing.T) {
	cases := []struct {
		in   string
		want Message
	}{
		{`{"ttl_ms":-1,"type":"cache_expire","request_id":1,"key":"k","cache":"c","namespace":"n","tenant_id":"t"}`,
			&CacheExpire{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 1, TTLMs: -1}},
		// Optional fields may be null; "cursor" is a string here, a u64 in queue_stats_value.
		{`{"type":"cache_scan","tenant_id":"t","namespace":"n","cache":"c","request_id":1,"prefix":null,"cursor":null,"limit":null}`,
			&CacheScan{TenantID: "t", Namespace: "n", Cache: "c", RequestID: 1}},
		{`{"type":"cache_scan","tenant_id":"t","namespace":"n","cache":"c","request_id":1,"cursor":"\u0041","key":"ignored"}`,
			&CacheScan{TenantID: "t", Namespace: "n", Cache: "c", RequestID: 1, Cursor: "A"}},
		{`{"type":"cache_scan_page","request_id":2,"keys":["a"],"cursor":"a"}`,
			&CacheScanPage{RequestID: 2, Keys: []string{"a"}, Cursor: "a"}},
		{`{"type":"cache_expire_result","request_id":3,"found":false,"version":0}`,
			&CacheExpireResult{RequestID: 3}},
	}
	for _, c := range cases {
		m, err := DecodeMessage([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(m, c.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.in, m, c.want)
		}
	}
}

func TestCacheExpireScanDecodeRejects(t *testing.T) {
	const scope = `"tenant_id":"t","namespace":"n","cache":"c","key":"k"`
	const scan = `"type":"cache_scan","tenant_id":"t","namespace":"n","cache":"c"`
	cases := map[string]string{
		"expire no ttl_ms":          `{"type":"cache_expire",` + scope + `,"request_id":1}`,
		"expire null ttl_ms":        `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":null}`,
		"expire ttl_ms string":      `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":"5"}`,
		"expire ttl_ms float":       `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":1.5}`,
		"expire ttl_ms exponent":    `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":1e3}`,
		"expire ttl_ms over i64":    `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":9223372036854775808}`,
		"expire ttl_ms minus zero":  `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":-0}`,
		"expire no request_id":      `{"type":"cache_expire",` + scope + `,"ttl_ms":1}`,
		"expire no key":             `{"type":"cache_expire","tenant_id":"t","namespace":"n","cache":"c","request_id":1,"ttl_ms":1}`,
		"expire duplicate ttl_ms":   `{"type":"cache_expire",` + scope + `,"request_id":1,"ttl_ms":1,"ttl_ms":2}`,
		"result no found":           `{"type":"cache_expire_result","request_id":1,"version":1}`,
		"result found string":       `{"type":"cache_expire_result","request_id":1,"found":"true","version":1}`,
		"result no version":         `{"type":"cache_expire_result","request_id":1,"found":true}`,
		"result negative version":   `{"type":"cache_expire_result","request_id":1,"found":true,"version":-1}`,
		"scan no request_id":        `{` + scan + `}`,
		"scan no cache":             `{"type":"cache_scan","tenant_id":"t","namespace":"n","request_id":1}`,
		"scan cursor number":        `{` + scan + `,"request_id":1,"cursor":5}`,
		"scan prefix array":         `{` + scan + `,"request_id":1,"prefix":["a"]}`,
		"scan negative limit":       `{` + scan + `,"request_id":1,"limit":-1}`,
		"scan limit string":         `{` + scan + `,"request_id":1,"limit":"10"}`,
		"scan duplicate cursor":     `{` + scan + `,"request_id":1,"cursor":"a","cursor":"b"}`,
		"scan escaped duplicate":    `{` + scan + `,"request_id":1,"prefix":"a","pr\u0065fix":"b"}`,
		"scan invalid UTF-8":        "{" + scan + ",\"request_id\":1,\"prefix\":\"\xff\"}",
		"page no cursor":            `{"type":"cache_scan_page","request_id":1,"keys":[]}`,
		"page null cursor":          `{"type":"cache_scan_page","request_id":1,"keys":[],"cursor":null}`,
		"page no keys":              `{"type":"cache_scan_page","request_id":1,"cursor":""}`,
		"page null keys":            `{"type":"cache_scan_page","request_id":1,"keys":null,"cursor":""}`,
		"page key number":           `{"type":"cache_scan_page","request_id":1,"keys":[1],"cursor":""}`,
		"page key null":             `{"type":"cache_scan_page","request_id":1,"keys":[null],"cursor":""}`,
		"queue stats cursor string": `{"type":"queue_stats_value","request_id":1,"members":0,"in_flight":0,"pending":0,"lag":0,"cursor":"a","delivered":0,"acked":0,"nacked":0,"redelivered":0,"timed_out":0,"dead_lettered":0}`,
		"cache_put ttl_ms negative": `{"type":"cache_put",` + scope + `,"value":"eA==","ttl_ms":-1}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(in))
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("decoded %#v, err %v; want ErrInvalidJSON", m, err)
			}
		})
	}
}

// QuotedLen is the length jsontext.AppendQuote writes, which the broker
// relies on to keep a cache_scan_page within the frame limit.
func FuzzQuotedLen(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\x1f\x7f", "\b\f\n\r\t", "é\u2028\u2029<>&/", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		b, err := jsontext.AppendQuote(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := QuotedLen(s); got != len(b) {
			t.Fatalf("QuotedLen(%q) = %d, want %d (%s)", s, got, len(b), b)
		}
	})
}
