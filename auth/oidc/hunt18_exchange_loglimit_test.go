package oidc

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/syncbuf"
	"github.com/felixmq/felix/internal/testclock"
)

// linesWith returns the logged lines in logs that contain msg.
func linesWith(logs *syncbuf.Buffer, msg string) []string {
	var out []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, msg) {
			out = append(out, line)
		}
	}
	return out
}

// limitedEnv is an exchange endpoint on real HTTP whose tenant "t1" trusts
// idp, with its JWKS at jwksURL, logging into a buffer on a test clock.
func limitedEnv(t *testing.T, idp *oidctest.Provider, jwksURL string, clock *testclock.Clock) (*ExchangeHandler, *syncbuf.Buffer, func(token string) int) {
	t.Helper()
	signer, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	cfg := issuerConfig(idp)
	cfg.JWKSURL = jwksURL
	h := &ExchangeHandler{
		Issuers: func(context.Context, string) ([]IssuerConfig, error) { return []IssuerConfig{cfg}, nil },
		Permissions: func(context.Context, string, *Principal) ([]string, error) {
			return []string{"stream.publish:stream:t1/*/*"}, nil
		},
		Signer:   signer,
		Verifier: &Verifier{Now: clock.Now},
		Log:      slog.New(slog.NewTextHandler(logs, nil)),
		Now:      clock.Now,
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	post := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/tenants/t1/token/exchange", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	return h, logs, post
}

// A peer sending invalid tokens in a loop, or exchanges naming an issuer
// whose keys cannot be fetched, must not write one log line per attempt:
// the lines of each kind are limited as the auditor's "access denied"
// ones (a burst, then one a second), every failure is still counted
// (Stats), and the next line says how many were left out and how many
// there were in all.
func TestExchangeLimitsFailureLines(t *testing.T) {
	const attempts = 200
	burst := auth.DefaultDenialLogBurst
	check := func(t *testing.T, logs *syncbuf.Buffer, msg string, clock *testclock.Clock, again func(), count func() uint64) {
		t.Helper()
		if n := count(); n != attempts {
			t.Fatalf("%d failures counted, want %d", n, attempts)
		}
		if got := linesWith(logs, msg); len(got) != burst {
			t.Fatalf("%d failed exchanges at once wrote %d %q lines, want %d", attempts, len(got), msg, burst)
		}
		clock.Advance(time.Second)
		again()
		got := linesWith(logs, msg)
		if len(got) != burst+1 {
			t.Fatalf("after a second: %d %q lines, want %d", len(got), msg, burst+1)
		}
		for _, want := range []string{"not_logged=" + itoa(attempts-burst), "failures_total=" + itoa(attempts+1), "tenant=t1"} {
			if !strings.Contains(got[burst], want) {
				t.Errorf("line after the pause lacks %q:\n%s", want, got[burst])
			}
		}
	}

	t.Run("invalid token", func(t *testing.T) {
		idp := oidctest.New(t)
		clock := testclock.New()
		h, logs, post := limitedEnv(t, idp, idp.JWKSURL(), clock)
		for range attempts {
			if s := post("not-a-jwt"); s != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", s)
			}
		}
		check(t, logs, "token exchange: invalid token", clock,
			func() { post("not-a-jwt") }, func() uint64 { return h.Stats().InvalidTokens })
		// A good token still goes through.
		if s := post(idp.Token(t, oidctest.DefaultKID, idp.Claims(clock.Now(), "alice"))); s != http.StatusOK {
			t.Fatalf("valid token: status %d", s)
		}
	})

	t.Run("issuer keys", func(t *testing.T) {
		idp := oidctest.New(t)
		url, _ := failingEndpoint(t)
		clock := testclock.New()
		h, logs, post := limitedEnv(t, idp, url, clock)
		tok := idp.Token(t, oidctest.DefaultKID, idp.Claims(clock.Now(), "mallory"))
		for range attempts {
			if s := post(tok); s != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", s)
			}
		}
		check(t, logs, "token exchange: issuer keys", clock,
			func() { post(tok) }, func() uint64 { return h.Stats().KeysUnavailable })
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// An exchange's "requested" and "resources" lists are bounded: narrowing
// costs the product of the permissions and both lists, and the 64 KiB
// body could hold thousands of each, minutes of CPU for one request of
// anyone holding a valid upstream token. A longer list is a 400.
func TestExchangeBoundsRequestedLists(t *testing.T) {
	env := newExchangeEnv(t)
	env.grants["alice"] = []string{"tenant.manage:tenant:t1"}
	good := "Bearer " + env.upstream(t, "alice")
	list := func(n int) string {
		return `["` + strings.Join(slices.Repeat([]string{"*"}, n), `","`) + `"]`
	}
	n := auth.MaxNarrowPatterns
	for _, body := range []string{
		`{"requested":` + list(300) + `,"resources":` + list(300) + `}`,
		`{"requested":` + list(n+1) + `}`,
		`{"resources":` + list(n+1) + `}`,
	} {
		status, reply := env.post(t, "t1", good, body)
		if status != http.StatusBadRequest || reply["code"] != "validation_error" {
			t.Errorf("body of %d bytes: %d %v, want 400 validation_error", len(body), status, reply["code"])
		}
	}
	status, reply := env.post(t, "t1", good, `{"requested":`+list(n)+`,"resources":`+list(n)+`}`)
	if status != http.StatusOK {
		t.Errorf("lists at the bound: %d %v %v", status, reply["code"], reply["message"])
	}
}
