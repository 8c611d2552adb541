package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/felixmq/felix/internal/oidctest"
	"github.com/felixmq/felix/internal/testclock"
)

// A Verifier caches the keys of every JWKS URL it fetched and the result
// of every discovery document, and kept a fetch semaphore per URL, for
// ever: an identity provider whose discovery document names a new
// jwks_uri at each fetch (or issuers that come and go in a control
// plane's store) grew the caches by one document per refresh without
// end. The caches hold at most MaxCachedDocuments documents of each kind,
// dropping the least recently used (counted in Stats().Evictions); fetch
// semaphores live only while a fetch is asked for.
func TestVerifierCachesAreBounded(t *testing.T) {
	idp := oidctest.New(t)
	var n atomic.Int32
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"jwks_uri": fmt.Sprintf("%s/keys/%d", srv.URL, n.Add(1))})
	})
	mux.HandleFunc("GET /keys/", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(idp.JWKS()) })
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	const max, rounds = 4, 12
	clock := testclock.New()
	v := &Verifier{Now: clock.Now, MaxCachedDocuments: max}
	rotating := issuerConfig(idp)
	rotating.DiscoveryURL = srv.URL + "/.well-known/openid-configuration"
	var issuers []IssuerConfig
	ctx := context.Background()
	for i := range rounds {
		// Issuers of a store that come and go, each with its own JWKS
		// URL, besides the provider whose jwks_uri changes at every
		// refresh.
		other := IssuerConfig{Issuer: fmt.Sprintf("https://idp-%d.example", i), Audiences: []string{oidctest.Audience},
			JWKSURL: fmt.Sprintf("%s/keys/other-%d", srv.URL, i)}
		issuers = []IssuerConfig{rotating, other}
		for _, iss := range []string{rotating.Issuer, other.Issuer} {
			c := idp.Claims(clock.Now(), "alice")
			c["iss"] = iss
			if _, err := v.Verify(ctx, idp.Token(t, oidctest.DefaultKID, c), issuers); err != nil {
				t.Fatalf("round %d, %s: %v", i, iss, err)
			}
		}
		clock.Advance(DefaultCacheTTL) // everything is stale: refreshed at the next use
	}
	v.mu.Lock()
	jwks, disc, sems := len(v.jwks), len(v.disc), len(v.fetch)
	v.mu.Unlock()
	if jwks > max || disc > max {
		t.Fatalf("after %d rounds the caches hold %d JWKS and %d discovery documents, bound %d", rounds, jwks, disc, max)
	}
	if sems != 0 {
		t.Errorf("%d fetch semaphores left with no fetch under way", sems)
	}
	st := v.Stats()
	if st.CachedJWKS != jwks || st.CachedDiscovery != disc {
		t.Errorf("Stats %+v, caches hold %d JWKS and %d discovery documents", st, jwks, disc)
	}
	// 2 JWKS URLs a round (rotating and other) and 1 discovery URL.
	if want := uint64(2*rounds - max); st.Evictions != want {
		t.Errorf("Stats().Evictions = %d, want %d", st.Evictions, want)
	}
	// The most recently used stay: the last round's tokens verify from the
	// cache, without a fetch.
	clock.Advance(-DefaultCacheTTL + time.Second)
	before := n.Load()
	for _, iss := range []string{rotating.Issuer, issuers[1].Issuer} {
		c := idp.Claims(clock.Now(), "bob")
		c["iss"] = iss
		if _, err := v.Verify(ctx, idp.Token(t, oidctest.DefaultKID, c), issuers); err != nil {
			t.Fatalf("cached %s: %v", iss, err)
		}
	}
	if n.Load() != before {
		t.Errorf("the most recently used documents were evicted: discovery fetched again")
	}
}

// A JWKS of thousands of keys (a provider's document may be up to 1 MiB)
// is not cached whole: at most MaxKeysPerJWKS keys are kept, in document
// order, and the others are counted in Stats().KeysDropped.
func TestVerifierBoundsKeysPerJWKS(t *testing.T) {
	idp := oidctest.New(t)
	var one map[string][]map[string]string
	if err := json.Unmarshal(idp.JWKS(), &one); err != nil || len(one["keys"]) != 1 {
		t.Fatalf("jwks %v: %v", one, err)
	}
	const total, max = 500, 8
	var keys []map[string]string
	for i := range total {
		k := map[string]string{}
		for f, val := range one["keys"][0] {
			k[f] = val
		}
		k["kid"] = fmt.Sprintf("k%d", i)
		keys = append(keys, k)
	}
	keys[0]["kid"] = oidctest.DefaultKID
	doc, _ := json.Marshal(map[string]any{"keys": keys})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(doc) }))
	t.Cleanup(srv.Close)
	cfg := issuerConfig(idp)
	cfg.JWKSURL = srv.URL
	v := &Verifier{MaxKeysPerJWKS: max}
	if _, err := v.Verify(context.Background(), idp.Token(t, oidctest.DefaultKID, idp.Claims(time.Now(), "alice")), []IssuerConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	cached := len(v.jwks[srv.URL].keys)
	v.mu.Unlock()
	if cached > max {
		t.Fatalf("%d keys cached of a %d-key JWKS, bound %d", cached, total, max)
	}
	if st := v.Stats(); st.KeysDropped != total-max {
		t.Errorf("Stats().KeysDropped = %d, want %d", st.KeysDropped, total-max)
	}
}
