package auth

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// A JWKS file rewritten with a document of the same size within the file
// system's modification-time granularity (two writes in the same tick of a
// coarse clock, or a tool that restores the mtime) keeps its size and
// mtime: a reload that looks only at those keeps the old keys for good.
// The content's digest decides, so the rotation is picked up at the next
// reload; an unchanged file is still not reloaded.
func TestKeySourceSeesSameSizeSameMtimeRewrite(t *testing.T) {
	ctx := context.Background()
	env := newFileKeySource(t)
	a, b, path, t0, src := env.a, env.b, env.path, env.t0, env.src
	docA, _ := json.Marshal(a.KeySet())
	docB, _ := json.Marshal(b.KeySet())
	if len(docA) != len(docB) {
		t.Fatalf("test needs documents of one size: %d and %d bytes", len(docA), len(docB))
	}
	writeFile(t, path, docB, t0) // rotated: same size, same mtime
	if changed, err := src.Reload(ctx); !changed || err != nil {
		t.Fatalf("same-size same-mtime rewrite: changed %v err %v (old keys kept)", changed, err)
	}
	v := &Verifier{Keys: src}
	if _, err := v.Verify(mustIssue(t, b, Claims{Tenant: "t"}), "t"); err != nil {
		t.Fatalf("key of the rewritten file: %v", err)
	}
	if _, err := v.Verify(mustIssue(t, a, Claims{Tenant: "t"}), "t"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key of the replaced file still accepted: %v", err)
	}
	if changed, err := src.Reload(ctx); changed || err != nil {
		t.Fatalf("unchanged file: changed %v err %v", changed, err)
	}
	writeFile(t, path, docB, t0.Add(time.Hour)) // touched: same content
	if changed, err := src.Reload(ctx); changed || err != nil {
		t.Fatalf("touched file with the same content: changed %v err %v", changed, err)
	}
}
