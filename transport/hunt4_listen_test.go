package transport

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// Listening on an address another socket holds fails with an error that
// says so once, names the address, and matches syscall.EADDRINUSE.
func TestHunt4ListenAddressInUse(t *testing.T) {
	addr := devListener(t, "127.0.0.1:0", Options{}).Addr().String()
	conf, err := ServerTLSConfig(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Listen(addr, conf, Options{}, nil)
	if err == nil {
		t.Fatal("second Listen on the same address succeeded")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("err = %v, want one matching EADDRINUSE", err)
	}
	if msg := err.Error(); strings.Count(msg, addr) != 1 || strings.Count(msg, "listen udp") != 1 {
		t.Errorf("err = %q, want the address and \"listen udp\" named once", msg)
	}
}
