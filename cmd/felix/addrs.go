package main

import (
	"fmt"
	"net"
)

// validateAddrs checks the listen addresses. An empty one is refused: to
// the net package "" means every interface on a random port, so an empty
// FELIX_LISTEN (a template's unset variable) or `listen: ~` in a file
// exposed a broker that accepts any token to the network, and an empty
// --controlplane-addr did the same to the admin API.
func (f serveFlags) validateAddrs(bad func(key, msg string, args ...any)) {
	for _, a := range []struct {
		key, val string
		canOff   bool
	}{{"listen", f.addr, false}, {"metrics-addr", f.metricsAddr, true}, {"controlplane-addr", f.cp.addr, true}} {
		if a.canOff && a.val == "off" {
			continue
		}
		if err := checkHostPort(a.val); err != nil {
			bad(a.key, "%v", err)
		}
	}
}

// checkHostPort accepts host:port (host may be empty only when written
// ":port", which means every interface on purpose).
func checkHostPort(addr string) error {
	if addr == "" {
		return fmt.Errorf("empty address (want host:port)")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("want host:port: %v", err)
	}
	return nil
}
