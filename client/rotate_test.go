package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/testclock"
)

// unsignedJWT is a token with the given claims JSON and no valid
// signature: the client only reads the claims, and a development broker
// accepts any token.
func unsignedJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"EdDSA","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func TestRotateDelay(t *testing.T) {
	clock := testclock.New()
	now := clock.Now()
	for _, tc := range []struct {
		name string
		life tokenLife
		want time.Duration
		ok   bool
	}{
		{"15 min token: margin capped at 30 s", tokenLife{iat: now, exp: now.Add(15 * time.Minute)}, 15*time.Minute - 30*time.Second, true},
		{"2 min token: a quarter of its life", tokenLife{iat: now, exp: now.Add(2 * time.Minute)}, 90 * time.Second, true},
		{"2 s token", tokenLife{iat: now, exp: now.Add(2 * time.Second)}, 1500 * time.Millisecond, true},
		{"no iat: a quarter of what is left", tokenLife{exp: now.Add(2 * time.Second)}, 1500 * time.Millisecond, true},
		{"cached token used late: same instant", tokenLife{iat: now.Add(-90 * time.Second), exp: now.Add(30 * time.Second)}, 0, true},
		{"cached 2 min token, 60 s left", tokenLife{iat: now.Add(-time.Minute), exp: now.Add(time.Minute)}, 30 * time.Second, true},
		{"iat after exp: ignored", tokenLife{iat: now.Add(time.Hour), exp: now.Add(2 * time.Second)}, 1500 * time.Millisecond, true},
		{"expired", tokenLife{iat: now.Add(-time.Minute), exp: now}, 0, false},
		{"no exp", tokenLife{iat: now}, 0, false},
	} {
		d, ok := rotateDelay(now, tc.life)
		if d != tc.want || ok != tc.ok {
			t.Errorf("%s: rotateDelay = %v, %v; want %v, %v", tc.name, d, ok, tc.want, tc.ok)
		}
	}
	// The instant does not move as time passes: a later stream on the
	// same token rotates at the same time.
	l := tokenLife{iat: now, exp: now.Add(time.Minute)}
	d0, _ := rotateDelay(now, l)
	d1, _ := rotateDelay(clock.Advance(20*time.Second), l)
	if d0-d1 != 20*time.Second {
		t.Errorf("rotation instant moved: %v then, 20 s later, %v", d0, d1)
	}
	if d, ok := retryDelay(now, now.Add(time.Second)); d != 500*time.Millisecond || !ok {
		t.Errorf("retryDelay 1 s before exp = %v, %v; want halfway", d, ok)
	}
	if _, ok := retryDelay(now, now.Add(minRotateDelay)); ok {
		t.Error("a retry is scheduled less than minRotateDelay ahead")
	}
}

func TestTokenTimes(t *testing.T) {
	for _, tc := range []struct {
		token    string
		iat, exp int64
		ok       bool
	}{
		{unsignedJWT(`{"sub":"s","iat":1700000000,"exp":1800000000}`), 1700000000, 1800000000, true},
		{unsignedJWT(`{"exp":1800000000.5}`), 0, 1800000000, true}, // no iat
		{unsignedJWT(`{"sub":"s","iat":1700000000}`), 0, 0, false}, // no exp
		{unsignedJWT(`{"exp":"soon"}`), 0, 0, false},               // not a number
		{"dev", 0, 0, false}, // opaque
		{"a.!!!.c", 0, 0, false},
	} {
		l, ok := tokenTimes(tc.token)
		if ok != tc.ok || (ok && (l.exp.Unix() != tc.exp || (tc.iat != 0) != !l.iat.IsZero() || (tc.iat != 0 && l.iat.Unix() != tc.iat))) {
			t.Errorf("tokenTimes(%q) = %+v, %v; want iat %d exp %d, %v", tc.token, l, ok, tc.iat, tc.exp, tc.ok)
		}
	}
}

// Streams authenticated with a TokenSource's JWT move to a fresh token
// before its exp, each asking the source again, and requests go on; an
// opaque token or a static one is never rotated.
func TestTokenRotationFollowsExp(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name   string
		token  func() string
		rotate bool
	}{
		{"jwt", func() string { return unsignedJWT(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(2*time.Second).Unix())) }, true},
		{"opaque", func() string { return "opaque-token" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			c := dial(t, b, Options{PublishConns: 1, PublishStreamsPerConn: 1, CacheConns: 1, CacheStreamsPerConn: 1,
				TokenSource: func(context.Context) (string, error) { calls.Add(1); return tc.token(), nil }})
			ctx := testCtx(t)
			atDial := calls.Load() // the publish stream (the subscription streams ask their own)
			end := time.Now().Add(2500 * time.Millisecond)
			for time.Now().Before(end) {
				if err := c.Publish(ctx, "default", "demo", []byte("x")); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			asked := calls.Load() - atDial
			if tc.rotate && asked < 1 {
				t.Errorf("the publish stream did not ask for a fresh token before its exp")
			}
			if !tc.rotate && asked != 0 {
				t.Errorf("TokenSource asked %d more times for an opaque token", asked)
			}
		})
	}
}
