package wire

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// cache_incr and cache_incr_value round-trip through the codec, including
// the i64 extremes, and decode by the rules of every other message.
func TestCacheIncrRoundTrip(t *testing.T) {
	for _, m := range []Message{
		&CacheIncr{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 1},
		&CacheIncr{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 2, Delta: I64(math.MinInt64)},
		&CacheIncr{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 3, Delta: I64(math.MaxInt64), TTLMs: U64(0)},
		&CacheIncr{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 4, Delta: I64(0), TTLMs: U64(math.MaxUint64)},
		&CacheIncrValue{RequestID: 5, Value: math.MinInt64, Version: math.MaxUint64},
		&CacheIncrValue{RequestID: 6, Value: math.MaxInt64, Version: 1},
		&CacheIncrValue{RequestID: 7},
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
}

func TestCacheIncrDecodeAccepts(t *testing.T) {
	cases := []struct {
		in   string
		want Message
	}{
		// Optional fields may be null, and fields may come in any order.
		{`{"delta":null,"ttl_ms":null,"type":"cache_incr","request_id":1,"key":"k","cache":"c","namespace":"n","tenant_id":"t"}`,
			&CacheIncr{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 1}},
		// A base64 "value" member of another message type is ignored here.
		{`{"type":"cache_incr","tenant_id":"t","namespace":"n","cache":"c","key":"k","request_id":1,"value":"eA=="}`,
			&CacheIncr{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", RequestID: 1}},
		{`{"type":"cache_incr_value","request_id":2,"value":-9223372036854775808,"version":3}`,
			&CacheIncrValue{RequestID: 2, Value: math.MinInt64, Version: 3}},
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

func TestCacheIncrDecodeRejects(t *testing.T) {
	const scope = `"tenant_id":"t","namespace":"n","cache":"c","key":"k"`
	cases := map[string]string{
		"no request_id":   `{"type":"cache_incr",` + scope + `}`,
		"null request_id": `{"type":"cache_incr",` + scope + `,"request_id":null}`,
		"no key":          `{"type":"cache_incr","tenant_id":"t","namespace":"n","cache":"c","request_id":1}`,
		"delta string":    `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":"5"}`,
		"delta float":     `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":1.0}`,
		"delta exponent":  `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":1e3}`,
		"delta over i64":  `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":9223372036854775808}`,
		"delta under i64": `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":-9223372036854775809}`,
		"delta plus":      `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":+1}`,
		// Redis refuses "-0" (and "+1", "01") as not an integer; -0 is
		// JSON, but no encoder writes it for an i64.
		"delta minus zero":         `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":-0}`,
		"delta leading zero":       `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":01}`,
		"delta minus leading zero": `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":-01}`,
		"value minus zero":         `{"type":"cache_incr_value","request_id":1,"value":-0,"version":2}`,
		"delta bool":               `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":true}`,
		"negative ttl_ms":          `{"type":"cache_incr",` + scope + `,"request_id":1,"ttl_ms":-1}`,
		"duplicate delta":          `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":1,"delta":2}`,
		"escaped duplicate":        `{"type":"cache_incr",` + scope + `,"request_id":1,"delta":1,"d\u0065lta":2}`,
		"trailing data":            `{"type":"cache_incr",` + scope + `,"request_id":1} x`,
		"value missing":            `{"type":"cache_incr_value","request_id":1,"version":2}`,
		"value null":               `{"type":"cache_incr_value","request_id":1,"value":null,"version":2}`,
		"value base64":             `{"type":"cache_incr_value","request_id":1,"value":"NDI=","version":2}`,
		"value over i64":           `{"type":"cache_incr_value","request_id":1,"value":9223372036854775808,"version":2}`,
		"version missing":          `{"type":"cache_incr_value","request_id":1,"value":2}`,
		"version negative":         `{"type":"cache_incr_value","request_id":1,"value":2,"version":-2}`,
		"cache_put value int":      `{"type":"cache_put",` + scope + `,"value":42,"ttl_ms":null}`,
		"cache_value value int":    `{"type":"cache_value",` + scope + `,"value":42}`,
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
