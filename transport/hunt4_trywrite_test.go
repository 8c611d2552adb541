package transport

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// On a real QUIC stream whose peer does not read, TryWrite queues whole
// frames until the stream's flow-control window is used up and then
// refuses, queueing nothing: the reader finds only whole frames, in
// order, and a blocking Write of the refused frame completes it once the
// reader drains the window.
func TestHunt4TryWriteWholeFramesOnly(t *testing.T) {
	const window = 5000 // bytes; not a multiple of the frame size
	const frameSize = 700
	ln := devListener(t, "127.0.0.1:0", Options{InitialStreamReceiveWindow: window, MaxStreamReceiveWindow: window})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type accepted struct {
		r   io.Reader
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			acc <- accepted{err: err}
			return
		}
		str, err := conn.AcceptStream(ctx)
		acc <- accepted{r: str, err: err}
	}()

	cc, err := Dial(ctx, ln.Addr().String(), insecureClient(), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	str, err := cc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, frameSize) }
	queued := 0
	for TryWrite(str, frame(queued)) {
		queued++
		if queued*frameSize > window {
			t.Fatalf("TryWrite queued %d bytes, beyond the %d-byte window", queued*frameSize, window)
		}
	}
	if queued != window/frameSize {
		t.Fatalf("TryWrite queued %d whole frames, want %d (all that fit the window)", queued, window/frameSize)
	}
	// The refused frame goes with a blocking Write, as callers do.
	writeDone := make(chan error, 1)
	go func() {
		_, err := str.Write(frame(queued))
		if err == nil {
			err = str.Close()
		}
		writeDone <- err
	}()
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	got, err := io.ReadAll(a.r)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := 0; i <= queued; i++ {
		want = append(want, frame(i)...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("reader got %d bytes, want %d whole frames (%d bytes) in order", len(got), queued+1, len(want))
	}
}
