package main

import (
	"strings"
	"testing"
	"time"
)

// `felix reply` answers `felix request` over a real broker: an echo
// service, then one with --text; --count ends the responder after its
// last answer is sent, and a request with nobody serving fails with
// "no responders".
func TestRequestReplyCLI(t *testing.T) {
	addr, _, ca := startServe(t)
	conn := []string{"--addr", addr, "--ca-file", ca, "-n", "tools"}
	request := func(args ...string) (string, error) {
		return runCLI(t, append(append([]string{"request"}, args...), conn...)...)
	}

	if _, err := request("echo", "nobody"); err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("request with nobody serving: %v", err)
	}

	for _, tc := range []struct {
		name, want string
		flags      []string
	}{
		{"echo", "", nil},
		{"clock", "tick", []string{"--text", "tick"}},
	} {
		type result struct {
			out string
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := runCLI(t, append(append([]string{"reply", tc.name, "--count", "3"}, tc.flags...), conn...)...)
			done <- result{out, err}
		}()
		// The first answered request says the responder is serving.
		var first string
		eventually(t, "a responder of "+tc.name, func() bool {
			out, err := request(tc.name, "ping-0", "--timeout", "2s")
			first = out
			return err == nil
		})
		replies := []string{first}
		for _, data := range []string{"ping-1", "ping-2"} {
			out, err := request(tc.name, data)
			if err != nil {
				t.Fatalf("%s: request %s: %v", tc.name, data, err)
			}
			replies = append(replies, out)
		}
		for i, got := range replies {
			want := tc.want
			if want == "" {
				want = "ping-" + string(rune('0'+i))
			}
			if got != want+"\n" {
				t.Errorf("%s: reply %d = %q, want %q", tc.name, i, got, want)
			}
		}
		select {
		case r := <-done:
			if r.err != nil || r.out != "ping-0\nping-1\nping-2\n" {
				t.Fatalf("%s: reply --count 3 ended with %v, printed %q", tc.name, r.err, r.out)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: reply --count 3 did not end after 3 answers", tc.name)
		}
	}
	eventually(t, "no responders once felix reply ended", func() bool {
		_, err := request("clock", "late")
		return err != nil && strings.Contains(err.Error(), "no responders")
	})
}
