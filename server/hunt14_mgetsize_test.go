package server

import (
	"testing"

	"github.com/felixmq/felix/wire"
)

// cacheValuesSize, which sizes an mget's reply before it is built, is the
// size of the frame the encoder writes.
func TestHunt14CacheValuesSizeIsExact(t *testing.T) {
	for _, vs := range [][][]byte{nil, {}, {nil}, {{}}, {[]byte("a")}, {[]byte("ab"), nil, []byte("abc"), []byte("abcd\x00\"\\")}} {
		for _, id := range []uint64{0, 7, 1 << 63} {
			m := &wire.CacheValues{RequestID: id, Values: vs}
			b, err := wire.AppendMessageFrame(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := cacheValuesSize(m), len(b)-wire.HeaderSize; got != want {
				t.Errorf("values %q id %d: size %d, frame payload %d", vs, id, got, want)
			}
		}
	}
}
