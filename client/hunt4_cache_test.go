package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
)

// A failed compare-and-set on a long key is an ErrConditionFailed like any
// other, and the stream goes on. The key is not echoed whole in the
// error's message: quoted (%q) and then JSON-escaped, a 5 MiB key of
// quotes became a 20 MiB reply, over the frame limit, so the client had
// to drop the stream and every request on it.
func TestHunt4ConditionFailedOnLongKey(t *testing.T) {
	tb := startBroker(t, testbroker.WithCaches(cache.Config{}, "default/default/c"))
	c := dial(t, tb, Options{CacheConns: 1, CacheStreamsPerConn: 1})
	ctx := testCtx(t)
	kv := c.Cache("default", "c")
	if _, err := kv.Put(ctx, "before", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s := c.cacheLanes[0].live()
	key := strings.Repeat(`"`, 5<<20)
	_, err := kv.Put(ctx, key, []byte("v"), IfVersion(7))
	var ce *CacheError
	if !errors.Is(err, ErrConditionFailed) || !errors.As(err, &ce) || ce.Version != 0 {
		t.Fatalf("if_version on a missing long key: %v", err)
	}
	if len(ce.Message) > 1024 {
		t.Errorf("the error message is %d bytes long", len(ce.Message))
	}
	if v, found, err := kv.Get(ctx, "before"); err != nil || !found || string(v) != "v" {
		t.Fatalf("get after: %q %v %v", v, found, err)
	}
	if c.cacheLanes[0].live() != s {
		t.Fatal("the session did not survive the failed condition")
	}
}
