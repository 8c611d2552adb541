package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The requested lists of a token exchange come from the client, and
// Narrow's work is the product of the permissions and both lists: 500
// requested actions and 500 resources took over a second for one grant,
// and the 64 KiB body of an exchange holds thousands of each (minutes of
// CPU per request). Each list is bounded by MaxNarrowPatterns; the
// intersections are not repeated when patterns repeat.
func TestNarrowBoundsRequestedLists(t *testing.T) {
	many := slices.Repeat([]string{"*"}, MaxNarrowPatterns+1)
	perms := []string{"tenant.manage:tenant:t1"}
	if out, err := Narrow(perms, many, nil); !errors.Is(err, ErrTooManyPatterns) {
		t.Fatalf("%d requested actions: %d permissions, err %v; want ErrTooManyPatterns", len(many), len(out), err)
	}
	if _, err := Narrow(perms, nil, many); !errors.Is(err, ErrTooManyPatterns) {
		t.Fatalf("%d requested resources: err %v; want ErrTooManyPatterns", len(many), err)
	}
	// At the bound: allowed, and repeated patterns give what one gives.
	atBound := many[:MaxNarrowPatterns]
	got, err := Narrow(perms, atBound, atBound)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Narrow(perms, []string{"*"}, []string{"*"})
	if !slices.Equal(got, want) {
		t.Errorf("repeated patterns: %v, want %v", got, want)
	}
	if r := narrowTo("stream.publish", atBound); len(r) != 1 {
		t.Errorf("narrowTo repeats its result: %d entries (%s)", len(r), strings.Join(r[:min(3, len(r))], " "))
	}
}
