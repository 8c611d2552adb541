package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/felixmq/felix/wire"
)

// A stream the broker reset says why, by its code; a token expiry matches
// ErrTokenExpired as well as ErrDisconnected; a reset this side made, or a
// lost connection, matches neither reason.
func TestConnectionErrorNamesBrokerResets(t *testing.T) {
	expired := &ConnectionError{Op: "publish", Err: &quic.StreamError{StreamID: 4, ErrorCode: quic.StreamErrorCode(wire.ResetTokenExpired), Remote: true}}
	if !errors.Is(expired, ErrTokenExpired) || !errors.Is(expired, ErrDisconnected) {
		t.Errorf("%v: want ErrTokenExpired and ErrDisconnected", expired)
	}
	if got := expired.Error(); got != "felix: publish: stream reset by the broker: token expired (code 3)" {
		t.Errorf("message %q", got)
	}
	malformed := &ConnectionError{Op: "publish", Err: &quic.StreamError{ErrorCode: 1, Remote: true}}
	if errors.Is(malformed, ErrTokenExpired) || !strings.Contains(malformed.Error(), "malformed or oversized frame (code 1)") {
		t.Errorf("%v", malformed)
	}
	local := &ConnectionError{Op: "subscribe", Err: &quic.StreamError{ErrorCode: 3, Remote: false}}
	if errors.Is(local, ErrTokenExpired) || !strings.Contains(local.Error(), "connection lost") {
		t.Errorf("a local reset: %v", local)
	}
	lost := &ConnectionError{Op: "cache", Err: &quic.IdleTimeoutError{}}
	if errors.Is(lost, ErrTokenExpired) || !errors.Is(lost, ErrDisconnected) || !strings.Contains(lost.Error(), "connection lost") {
		t.Errorf("a lost connection: %v", lost)
	}
}

func TestTokenExpiredReadsJWTExp(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	jwt := func(claims string) string {
		return "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	for tok, want := range map[string]bool{
		jwt(`{"exp":1799999999}`): true,
		jwt(`{"exp":1800000100}`): false,
		jwt(`{"exp":1.7e9}`):      true,
		jwt(`{"sub":"no exp"}`):   false,
		jwt(`not json`):           false,
		"dev":                     false,
		"a.b!.c":                  false,
	} {
		if got := tokenExpired(tok, now); got != want {
			t.Errorf("tokenExpired(%q) = %v, want %v", tok, got, want)
		}
	}
}

// A broker's storage failure, for a publish (by its message) or a queue
// ack (by its code), matches ErrStorage; other server errors do not.
func TestServerErrorMatchesErrStorage(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&ServerError{Message: wire.StorageWriteFailed + ", publish not stored: stream t/ns/s: no space left on device"}, true},
		{fmt.Errorf("publish: %w", &ServerError{Message: `queue: group "g": write state: storage write failed: file too large`, Code: wire.QueueCodeStorage}), true},
		{&ServerError{Message: "stream not found: tenant=t namespace=ns stream=s"}, false},
		{&ServerError{Message: "not in flight", Code: "not_in_flight"}, false},
	} {
		if got := errors.Is(c.err, ErrStorage); got != c.want {
			t.Errorf("errors.Is(%v, ErrStorage) = %v, want %v", c.err, got, c.want)
		}
	}
}
