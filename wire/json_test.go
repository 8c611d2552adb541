package wire

import (
	"errors"
	"reflect"
	"testing"
)

func TestDecodeMessageRejects(t *testing.T) {
	cases := map[string]string{
		"not json":             `hello`,
		"not an object":        `[1]`,
		"no type":              `{"message":"x"}`,
		"unknown type":         `{"type":"frobnicate"}`,
		"type not string":      `{"type":1}`,
		"type wrong case":      `{"TYPE":"ok"}`,
		"missing field":        `{"type":"auth","tenant_id":"t"}`,
		"required null":        `{"type":"auth","tenant_id":"t","token":null}`,
		"wrong field type":     `{"type":"auth","tenant_id":1,"token":"x"}`,
		"string number":        `{"type":"publish_ok","request_id":"7"}`,
		"float number":         `{"type":"publish_ok","request_id":7.0}`,
		"negative number":      `{"type":"publish_ok","request_id":-1}`,
		"u64 overflow":         `{"type":"publish_ok","request_id":18446744073709551616}`,
		"u16 overflow":         `{"type":"auth","tenant_id":"t","token":"x","client_flags":65536}`,
		"duplicate field":      `{"type":"error","message":"a","message":"b"}`,
		"trailing data":        `{"type":"ok"} {}`,
		"truncated":            `{"type":"error","message":"a`,
		"invalid utf8":         "{\"type\":\"error\",\"message\":\"\xff\"}",
		"bad base64":           `{"type":"publish","tenant_id":"t","namespace":"n","stream":"s","payload":"***"}`,
		"unpadded base64":      `{"type":"publish","tenant_id":"t","namespace":"n","stream":"s","payload":"aGk"}`,
		"base64 newline":       `{"type":"publish","tenant_id":"t","namespace":"n","stream":"s","payload":"aG\nk="}`,
		"base64 return":        `{"type":"publish","tenant_id":"t","namespace":"n","stream":"s","payload":"aG\rk="}`,
		"bad ack":              `{"type":"publish","tenant_id":"t","namespace":"n","stream":"s","payload":"","ack":"always"}`,
		"bad start":            `{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":"middle"}`,
		"bad start object":     `{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"offset":"1"}}`,
		"bad cursor reason":    `{"type":"subscribe_cursor_error","reason":"late","requested":1,"available":2}`,
		"payloads not list":    `{"type":"publish_batch","tenant_id":"t","namespace":"n","stream":"s","payloads":"aGk="}`,
		"cache_value no key":   `{"type":"cache_value","tenant_id":"t","namespace":"n","cache":"c","key":"k"}`,
		"start unit not null":  `{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"latest":1}}`,
		"escaped duplicate":    `{"type":"error","message":"a","m\u0065ssage":"b"}`,
		"escaped type twice":   `{"type":"ok","typ\u0065":"ok"}`,
		"cache_put null value": `{"type":"cache_put","tenant_id":"t","namespace":"n","cache":"c","key":"k","value":null,"ttl_ms":null}`,
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

func TestDecodeMessageAccepts(t *testing.T) {
	cases := []struct {
		in   string
		want Message
	}{
		// type not first, unknown fields ignored, whitespace allowed.
		{` { "message" : "m", "extra": {"a":[1,2]}, "type": "error" } `, &ErrorMessage{Message: "m"}},
		// optional fields may be null.
		{`{"type":"publish","tenant_id":"t","namespace":"n","stream":"s","payload":"","request_id":null,"ack":null}`,
			&Publish{TenantID: "t", Namespace: "n", Stream: "s", Payload: []byte{}}},
		// a field of another type is ignored whatever its value.
		{`{"type":"ok","payload":12}`, &OK{}},
		// escaped base64 is unescaped first.
		{`{"type":"event","tenant_id":"t","namespace":"n","stream":"s","payload":"aGk\u003d"}`,
			&Event{TenantID: "t", Namespace: "n", Stream: "s", Payload: []byte("hi")}},
		{`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":"latest"}`,
			&Subscribe{TenantID: "t", Namespace: "n", Stream: "s", Start: &StartPosition{Kind: StartLatest}}},
		// member names are matched after unescaping, as serde does.
		{`{"typ\u0065":"publish_ok","request\u005fid":7}`, &PublishOK{RequestID: 7}},
		{`{"type":"auth","tenant\u005Fid":"t","\u0074oken":"x"}`, &Auth{TenantID: "t", Token: "x"}},
		// serde's map form of the unit start variants.
		{`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"earliest":null}}`,
			&Subscribe{TenantID: "t", Namespace: "n", Stream: "s", Start: &StartPosition{Kind: StartEarliest}}},
		{`{"type":"subscribe","tenant_id":"t","namespace":"n","stream":"s","start":{"latest":null}}`,
			&Subscribe{TenantID: "t", Namespace: "n", Stream: "s", Start: &StartPosition{Kind: StartLatest}}},
		{`{"type":"cache_put","tenant_id":"t","namespace":"n","cache":"c","key":"k","value":"","ttl_ms":0}`,
			&CachePut{TenantID: "t", Namespace: "n", Cache: "c", Key: "k", Value: []byte{}, TTLMs: U64(0)}},
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

func TestEncodeMessageErrors(t *testing.T) {
	for _, m := range []Message{
		&Auth{TenantID: "\xff", Token: "x"},
		&Publish{Ack: Ack(AckMode(9))},
		&Subscribe{Start: &StartPosition{Kind: 7}},
		&SubscribeCursorError{Reason: "late"},
	} {
		if _, err := EncodeMessage(m); err == nil {
			t.Errorf("%T encoded without error", m)
		}
	}
}
