package wire

import (
	"reflect"
	"strings"
	"testing"
)

func init() {
	// The request/reply extension's vectors (gen_vectors.py), by hand.
	for name, m := range map[string]Message{
		"ext_auth_request":    &Auth{TenantID: "t1", Token: "tok", ClientFlags: U16(KnownFlags | CapRequest)},
		"ext_auth_ok_request": &AuthOK{ServerFlags: ServerFlagsFor(KnownFlags | CapRequest)},
		"ext_serve":           &Serve{TenantID: "t1", Namespace: "default", Service: "time", MaxInFlight: U64(8)},
		"ext_serve_default":   &Serve{TenantID: "t1", Namespace: "default", Service: "time"},
		"ext_serving":         &Serving{},
		"ext_service_request": &ServiceRequest{RequestID: 77, Payload: []byte("now?")},
		"ext_service_reply":   &ServiceReply{RequestID: 77, Payload: []byte{0, 0xff}},
		"ext_service_error":   &ServiceError{RequestID: 78, Message: "db down"},
		"ext_request": &Request{RequestID: 5, TenantID: "t1", Namespace: "default", Service: "time",
			Payload: []byte("now?"), TimeoutMs: U64(250)},
		"ext_request_default": &Request{RequestID: 6, TenantID: "t1", Namespace: "default", Service: "time", Payload: []byte{}},
		"ext_reply":           &Reply{RequestID: 5, Payload: []byte("12:00")},
		"ext_request_error": &RequestError{RequestID: 6, Code: RequestCodeNoResponders,
			Message: "no responders for t1/default/time"},
	} {
		expectedMessages[name] = m
	}
}

func TestCapRequestNegotiation(t *testing.T) {
	if ExtensionCaps&CapRequest == 0 {
		t.Fatal("CapRequest is not in ExtensionCaps")
	}
	if got := ServerFlagsFor(KnownFlags); got&CapRequest != 0 {
		t.Fatalf("granted to a client that did not offer it: %#x", got)
	}
	if got := ServerFlagsFor(KnownFlags | CapRequest); got&CapRequest == 0 {
		t.Fatalf("not granted to a client that offered it: %#x", got)
	}
}

func TestServiceMessagesRoundTrip(t *testing.T) {
	for _, m := range []Message{
		&Serve{TenantID: "t", Namespace: "n", Service: "s.v-1", MaxInFlight: U64(0)},
		&Serving{},
		&ServiceRequest{RequestID: ^uint64(0), Payload: []byte{}},
		&ServiceReply{RequestID: 1, Payload: []byte("\x00\x01\x02 big")},
		&ServiceError{RequestID: 2, Message: "q\" \\ \n é"},
		&Request{RequestID: 3, TenantID: "t", Namespace: "n", Service: "s", Payload: []byte("x"), TimeoutMs: U64(60000)},
		&Request{RequestID: 4, TenantID: "t", Namespace: "n", Service: "s", Payload: []byte{}},
		&Reply{RequestID: 5, Payload: []byte{}},
		&RequestError{RequestID: 6, Code: RequestCodeTimeout, Message: "no reply within 5000 ms"},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %s:\n got %#v\nwant %#v", b, got, m)
		}
	}
}

func TestServiceMessagesStrictDecode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"type":"request","request_id":1,"tenant_id":"t","namespace":"n","service":"s"}`, `missing field "payload"`},
		{`{"type":"request","request_id":1,"tenant_id":"t","namespace":"n","payload":""}`, `missing field "service"`},
		{`{"type":"request","request_id":1,"tenant_id":"t","namespace":"n","service":"s","payload":"", "timeout_ms":-1}`, "timeout_ms must be an unsigned integer"},
		{`{"type":"request","request_id":1,"tenant_id":"t","namespace":"n","service":"s","payload":"eA"}`, "invalid base64"},
		{`{"type":"request","request_id":1,"request_id":2,"tenant_id":"t","namespace":"n","service":"s","payload":""}`, "duplicate field"},
		{`{"type":"serve","tenant_id":"t","namespace":"n","service":null}`, `field "service" must not be null`},
		{`{"type":"serve","tenant_id":"t","namespace":"n","service":"s","max_in_flight":1.5}`, "max_in_flight must be an unsigned integer"},
		{`{"type":"service_reply","request_id":1}`, `missing field "payload"`},
		{`{"type":"service_reply","request_id":"1","payload":""}`, "request_id must be an unsigned integer"},
		{`{"type":"service_error","request_id":1}`, `missing field "message"`},
		{`{"type":"request_error","request_id":1,"code":"timeout"}`, `missing field "message"`},
		{`{"type":"reply","request_id":1,"payload":""}x`, ""},
	} {
		_, err := DecodeMessage([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.in, err, tc.want)
		}
	}
	// Optional fields may be null; unknown fields are ignored.
	m, err := DecodeMessage([]byte(`{"service":"s","x":[1],"type":"serve","tenant_id":"t","namespace":"n","max_in_flight":null}`))
	if err != nil || !reflect.DeepEqual(m, &Serve{TenantID: "t", Namespace: "n", Service: "s"}) {
		t.Fatalf("%#v %v", m, err)
	}
}
