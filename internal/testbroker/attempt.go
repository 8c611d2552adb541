package testbroker

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Attempt is one try of a test whose set-up must finish within a real
// time limit it cannot control (a token's lifetime, the broker's auth
// timeout): on a loaded machine the set-up may overrun the limit, and
// then the test cannot check what it means to check. An Attempt is the
// test's testing.TB for that try; it holds the failures instead of
// failing the test, so Retry can tell a set-up that overran from a real
// failure.
type Attempt struct {
	testing.TB
	// N counts the tries from 0; Limit is this try's time limit.
	N     int
	Limit time.Duration

	mu           sync.Mutex
	failures     []string
	inconclusive string    // why this try cannot test anything
	setupBy      time.Time // the set-up under way must end by then
	inSetup      bool
	setupLate    bool // a failure came during a set-up past setupBy
}

// attemptAbort is the panic value that ends a try (Fatal, Inconclusive).
type attemptAbort struct{}

// Retry runs try with a time limit of first, doubled after every try that
// was inconclusive (its set-up overran the limit), at most tries times.
// A try that fails for any other reason fails the test; a test none of
// whose tries was conclusive fails too: it never tested anything. Each
// inconclusive try is logged with why.
func Retry(t testing.TB, first time.Duration, tries int, try func(a *Attempt)) {
	t.Helper()
	limit := first
	for n := range tries {
		a := &Attempt{TB: t, N: n, Limit: limit}
		a.run(try)
		a.mu.Lock()
		failures, why := a.failures, a.inconclusive
		if why == "" && a.setupLate {
			why = "set-up overran its limit and failed: " + strings.Join(failures, "; ")
		}
		a.mu.Unlock()
		if why == "" {
			for _, f := range failures {
				t.Errorf("try %d (limit %v): %s", n, limit, f)
			}
			if len(failures) > 0 {
				t.FailNow()
			}
			return // conclusive and passed
		}
		t.Logf("try %d (limit %v) inconclusive, not counted: %s", n, limit, why)
		limit *= 2
	}
	t.Fatalf("no try of %d was conclusive: the set-up overran every limit up to %v, so nothing was tested", tries, limit/2)
}

func (a *Attempt) run(try func(a *Attempt)) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(attemptAbort); !ok {
				panic(r)
			}
		}
	}()
	try(a)
}

// SetupBy starts a set-up that is only meaningful when it ends (SetupDone)
// by deadline: a failure during it once deadline has passed makes the
// try inconclusive instead of failed. A failure before deadline, or after
// SetupDone, is a real one.
func (a *Attempt) SetupBy(deadline time.Time) {
	a.mu.Lock()
	a.setupBy, a.inSetup = deadline, true
	a.mu.Unlock()
}

// SetupDone ends the set-up started by SetupBy.
func (a *Attempt) SetupDone() {
	a.mu.Lock()
	a.inSetup = false
	a.mu.Unlock()
}

// Inconclusive ends the try as one that could not test anything, for
// why; Retry tries again with a longer limit.
func (a *Attempt) Inconclusive(format string, args ...any) {
	a.mu.Lock()
	a.inconclusive = fmt.Sprintf(format, args...)
	a.mu.Unlock()
	panic(attemptAbort{})
}

func (a *Attempt) fail(msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inSetup && !time.Now().Before(a.setupBy) {
		a.setupLate = true
	}
	a.failures = append(a.failures, caller()+msg)
}

// caller names the first frame outside this file and the testing package.
func caller() string {
	pc := make([]uintptr, 16)
	frames := runtime.CallersFrames(pc[:runtime.Callers(3, pc)])
	for {
		f, more := frames.Next()
		if !strings.HasSuffix(f.File, "testbroker/attempt.go") && !strings.HasPrefix(f.Function, "testing.") {
			i := strings.LastIndexByte(f.File, '/')
			return fmt.Sprintf("%s:%d: ", f.File[i+1:], f.Line)
		}
		if !more {
			return ""
		}
	}
}

// Error, Errorf, Fail record a failure; Fatal, Fatalf, FailNow record it
// and end the try. Failed reports whether this try failed.
func (a *Attempt) Error(args ...any)                 { a.fail(fmt.Sprint(args...)) }
func (a *Attempt) Errorf(format string, args ...any) { a.fail(fmt.Sprintf(format, args...)) }
func (a *Attempt) Fail()                             { a.fail("failed") }
func (a *Attempt) Fatal(args ...any)                 { a.fail(fmt.Sprint(args...)); panic(attemptAbort{}) }
func (a *Attempt) Fatalf(format string, args ...any) {
	a.fail(fmt.Sprintf(format, args...))
	panic(attemptAbort{})
}
func (a *Attempt) FailNow() { a.fail("FailNow"); panic(attemptAbort{}) }
func (a *Attempt) Failed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.failures) > 0
}
