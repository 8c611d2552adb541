package server_test

import (
	"strconv"
	"testing"

	"github.com/felixmq/felix/cache"
	"github.com/felixmq/felix/internal/testbroker"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/wire"
)

// binFlags is what a client offering binary cache frames (and the JSON
// cache extension) sends, and is granted.
const binFlags = wire.KnownFlags | wire.CapCacheExt | wire.CapCacheBin

// authBin authenticates s offering flags and checks the grant.
func (s *rawStream) authBin(flags uint16) {
	s.t.Helper()
	s.sendMsg(&wire.Auth{TenantID: "t1", Token: "x", ClientFlags: wire.U16(flags)})
	s.expectJSON(`{"type":"auth_ok","server_flags":` + strconv.Itoa(int(flags|wire.KnownFlags)) + `}`)
	if flags&wire.CapCacheBin != 0 {
		s.r.AllowFlags(wire.FlagBinaryCache)
	}
}

func binGet(t *testing.T, id uint64, tenant, cacheName, key string) []byte {
	f, err := wire.AppendCacheBinGetFrame(nil, id, tenant, "default", cacheName, key)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func binPut(t *testing.T, id uint64, m *wire.CachePut) []byte {
	f, err := wire.AppendCacheBinPutFrame(nil, id, m)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func primaryPut(key, value string) *wire.CachePut {
	return &wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: key, Value: []byte(value)}
}

func TestBinaryCacheRoundTrip(t *testing.T) {
	tb := startCacheTB(t)
	s := dialRaw(t, tb).open()
	s.authBin(binFlags)
	s.send(binPut(t, 1, primaryPut("k", "v1")))
	s.expect(wire.AppendCacheBinOKFrame(nil, 1, 1))
	s.send(binGet(t, 2, "t1", "primary", "k"))
	s.expect(wire.AppendCacheBinValueFrame(nil, 2, 1, []byte("v1")))
	s.send(binGet(t, 3, "t1", "primary", "missing"))
	s.expect(wire.AppendCacheBinMissFrame(nil, 3))
	// Conditions and TTL that hold: stored.
	m := primaryPut("k", "v2")
	m.IfVersion = wire.U64(1)
	s.send(binPut(t, 4, m))
	s.expect(wire.AppendCacheBinOKFrame(nil, 4, 2))
	m = primaryPut("new", "")
	m.IfAbsent, m.TTLMs = true, wire.U64(60_000)
	s.send(binPut(t, 5, m))
	s.expect(wire.AppendCacheBinOKFrame(nil, 5, 3))
	s.send(binGet(t, 6, "t1", "primary", "new"))
	s.expect(wire.AppendCacheBinValueFrame(nil, 6, 3, []byte{})) // an empty value is a hit
	m = primaryPut("gone", "x")
	m.TTLMs = wire.U64(0) // expires at once
	s.send(binPut(t, 7, m))
	s.expect(wire.AppendCacheBinOKFrame(nil, 7, 4))
	s.send(binGet(t, 8, "t1", "primary", "gone"))
	s.expect(wire.AppendCacheBinMissFrame(nil, 8))

	// Pipelined binary and JSON requests, written at once, are answered in
	// order, each in its own encoding; JSON-only requests keep working.
	var batch []byte
	batch = append(batch, binGet(t, 9, "t1", "primary", "k")...)
	batch, _ = wire.AppendMessageFrame(batch, &wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", RequestID: wire.U64(10)})
	batch = append(batch, binPut(t, 11, primaryPut("k", "v3"))...)
	batch, _ = wire.AppendMessageFrame(batch, &wire.CacheDelete{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "new", RequestID: 12})
	s.send(batch)
	s.expect(wire.AppendCacheBinValueFrame(nil, 9, 2, []byte("v2")))
	s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"k","value":"djI=","request_id":10,"version":2}`)
	s.expect(wire.AppendCacheBinOKFrame(nil, 11, 5))
	s.expectJSON(`{"type":"cache_deleted","request_id":12,"deleted":true}`)

	// What a binary put stored is what JSON reads, and the reverse.
	s.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "j", Value: []byte("from json"), RequestID: wire.U64(13)})
	s.expectJSON(`{"type":"cache_ok","request_id":13,"version":6}`)
	s.send(binGet(t, 14, "t1", "primary", "j"))
	s.expect(wire.AppendCacheBinValueFrame(nil, 14, 6, []byte("from json")))
}

// A client that did not negotiate CapCacheBin gets the unsupported-flags
// reply for a binary cache frame, and its stream goes on.
func TestBinaryCacheNotNegotiated(t *testing.T) {
	tb := startCacheTB(t)
	c := dialRaw(t, tb)
	for name, flags := range map[string]*uint16{
		"reference client": nil,
		"known flags":      wire.U16(wire.KnownFlags),
		"cache extension":  wire.U16(wire.KnownFlags | wire.CapCacheExt | wire.CapQueue),
	} {
		t.Run(name, func(t *testing.T) {
			s := c.open()
			s.t = t
			if flags == nil {
				s.auth("t1", nil)
			} else {
				s.authBin(*flags)
			}
			s.send(binPut(t, 1, primaryPut("k", "v")))
			s.expectJSON(`{"type":"error","message":"unsupported frame flags"}`)
			s.send(binGet(t, 2, "t1", "primary", "k"))
			s.expectJSON(`{"type":"error","message":"unsupported frame flags"}`)
			s.sendMsg(&wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", RequestID: wire.U64(3)})
			s.expectJSON(`{"type":"cache_value","tenant_id":"t1","namespace":"default","cache":"primary","key":"k","value":null,"request_id":3}`)
		})
	}
}

// Every failure of a binary request gets exactly the JSON reply the same
// request in JSON (with a request_id) gets, with and without the JSON cache
// extension, and the stream goes on or ends alike.
func TestBinaryCacheFailuresMatchJSON(t *testing.T) {
	tb := testbroker.Start(t, testbroker.WithCaches(cache.Config{MaxBytes: 1 << 20}, "t1/default/primary", "t1/default/secret"), smallVersions(),
		testbroker.WithServerOptions(server.Options{Auth: denySecret{}}))
	c := dialRaw(t, tb)
	setup := c.open()
	setup.authBin(binFlags)
	setup.sendMsg(&wire.CachePut{TenantID: "t1", Namespace: "default", Cache: "primary", Key: "k", Value: []byte("v"), RequestID: wire.U64(1)})
	setup.expectJSON(`{"type":"cache_ok","request_id":1,"version":1}`)

	withPut := func(mod func(*wire.CachePut)) *wire.CachePut {
		m := primaryPut("k", "x")
		mod(m)
		return m
	}
	ifAbsent := withPut(func(m *wire.CachePut) { m.IfAbsent = true })
	staleCAS := withPut(func(m *wire.CachePut) { m.IfVersion = wire.U64(7) })
	tooLarge := withPut(func(m *wire.CachePut) { m.Key, m.Value = "big", make([]byte, 2<<20) })
	forbidden := withPut(func(m *wire.CachePut) { m.Cache = "secret" })
	otherTenant := withPut(func(m *wire.CachePut) { m.TenantID = "t2" })
	const conditionFailed = `{"type":"cache_error","request_id":5,"code":"condition_failed","message":"cache condition failed: key \"k\" is at version 1","version":1}`
	cases := []struct {
		name string
		json wire.Message
		bin  []byte
		ext  string // the reply with CapCacheExt
		ref  string // the reply without it
		ends bool
	}{
		{"get wrong tenant", &wire.CacheGet{TenantID: "t2", Namespace: "default", Cache: "primary", Key: "k", RequestID: wire.U64(5)},
			binGet(t, 5, "t2", "primary", "k"), `{"type":"error","message":"tenant mismatch"}`, "", true},
		{"put wrong tenant", withID(otherTenant), binPut(t, 5, otherTenant), `{"type":"error","message":"tenant mismatch"}`, "", true},
		{"get forbidden", &wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "secret", Key: "k", RequestID: wire.U64(5)},
			binGet(t, 5, "t1", "secret", "k"), `{"type":"error","message":"forbidden"}`, "", false},
		{"put forbidden", withID(forbidden), binPut(t, 5, forbidden), `{"type":"error","message":"forbidden"}`, "", false},
		{"get unknown cache", &wire.CacheGet{TenantID: "t1", Namespace: "default", Cache: "other", Key: "k", RequestID: wire.U64(5)},
			binGet(t, 5, "t1", "other", "k"), `{"type":"error","message":"cache scope not found: t1/default/other"}`, "", false},
		{"put if_absent on a live key", withID(ifAbsent), binPut(t, 5, ifAbsent), conditionFailed, conditionFailed, false},
		{"put stale if_version", withID(staleCAS), binPut(t, 5, staleCAS), conditionFailed, conditionFailed, false},
		{"put too large", withID(tooLarge), binPut(t, 5, tooLarge),
			`{"type":"cache_error","request_id":5,"code":"too_large","message":"cache entry too large: 2097251 bytes exceeds capacity 1048576"}`,
			`{"type":"error","message":"cache entry too large: 2097251 bytes exceeds capacity 1048576"}`, false},
	}
	for _, ext := range []bool{true, false} {
		flags := uint16(wire.KnownFlags | wire.CapCacheBin)
		if ext {
			flags |= wire.CapCacheExt
		}
		for _, tc := range cases {
			t.Run(tc.name+"/ext="+strconv.FormatBool(ext), func(t *testing.T) {
				want := tc.ext
				if !ext && tc.ref != "" {
					want = tc.ref
				}
				for _, binary := range []bool{false, true} {
					s := c.open()
					s.t = t
					s.authBin(flags)
					if binary {
						s.send(tc.bin)
					} else {
						s.sendMsg(tc.json)
					}
					s.expectJSON(want)
					if tc.ends {
						s.expectEnd()
						continue
					}
					s.send(binGet(t, 6, "t1", "primary", "k")) // the stream goes on
					s.expect(wire.AppendCacheBinValueFrame(nil, 6, 1, []byte("v")))
				}
			})
		}
	}
	// Nothing that failed was stored.
	setup.send(binGet(t, 2, "t1", "primary", "big"))
	setup.expect(wire.AppendCacheBinMissFrame(nil, 2))
	if n := tb.Server.Denials(); n != 8 { // 2 forbidden cases × 2 encodings × 2 flag sets
		t.Fatalf("denials counted %d, want 8", n)
	}
}

func withID(m *wire.CachePut) *wire.CachePut {
	c := *m
	c.RequestID = wire.U64(5)
	return &c
}

// A malformed binary cache frame resets its stream, as malformed JSON does:
// no reply, no crash, and the connection's other streams and other
// connections carry on.
func TestBinaryCacheMalformed(t *testing.T) {
	tb := startCacheTB(t)
	c := dialRaw(t, tb)
	other := dialRaw(t, tb).open()
	other.authBin(binFlags)
	sibling := c.open()
	sibling.authBin(binFlags)
	good := binPut(t, 1, primaryPut("k", "v"))[wire.HeaderSize:]
	frame := func(flags uint16, body []byte) []byte { return wire.AppendFrame(nil, flags, body) }
	set := func(at int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[at] = v
		return b
	}
	cases := map[string][]byte{
		"empty body":         frame(wire.FlagBinaryCache, nil),
		"short id":           frame(wire.FlagBinaryCache, good[:5]),
		"cut value":          frame(wire.FlagBinaryCache, good[:len(good)-1]),
		"trailing bytes":     frame(wire.FlagBinaryCache, append(append([]byte(nil), good...), 0)),
		"unknown op":         frame(wire.FlagBinaryCache, set(0, 0x7f)),
		"reply op":           frame(wire.FlagBinaryCache, set(0, byte(wire.CacheBinOK))),
		"unknown option":     frame(wire.FlagBinaryCache, set(len(good)-1-4-1, 0x40)),
		"invalid utf8":       frame(wire.FlagBinaryCache, set(11, 0xff)),
		"name past the end":  frame(wire.FlagBinaryCache, set(9, 0xff)),
		"flag with publish":  frame(wire.FlagBinaryCache|wire.FlagBinaryPublishBatch, good),
		"huge value length":  frame(wire.FlagBinaryCache, append(append([]byte(nil), good[:len(good)-5]...), 0xff, 0xff, 0xff, 0xff, 'v')),
		"all ones":           frame(wire.FlagBinaryCache, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"get with put field": frame(wire.FlagBinaryCache, append(binGet(t, 1, "t1", "primary", "k")[wire.HeaderSize:], 0, 0, 0, 0, 0)),
	}
	id := uint64(10)
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			s := c.open()
			s.t = t
			s.authBin(binFlags)
			s.send(f)
			s.expectEnd()
			for _, live := range []*rawStream{sibling, other} {
				id++
				live.t = t
				live.send(binGet(t, id, "t1", "primary", "nothing"))
				live.expect(wire.AppendCacheBinMissFrame(nil, id))
			}
		})
	}
	// Nothing malformed was stored.
	sibling.t = t
	sibling.send(binGet(t, 1, "t1", "primary", "k"))
	sibling.expect(wire.AppendCacheBinMissFrame(nil, 1))
}
