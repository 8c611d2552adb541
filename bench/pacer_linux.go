//go:build linux

package bench

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// prctl(2) options from <linux/prctl.h>.
const (
	prSetTimerSlack = 29
	prGetTimerSlack = 30 // returns the current slack as the call's result
)

// newPacer returns a pacer that sleeps in the runtime's netpoller on a
// timerfd(2): the kernel wakes it with nanosecond resolution and no timer
// slack, and while it sleeps the publisher's goroutine is parked like any
// goroutine waiting on a socket, so its P runs whatever the publish made
// runnable (a client's flusher or connection loop). The earlier pacer slept
// in nanosleep(2) on a locked thread: the P stayed in the syscall, and the
// goroutines the publish had just woken waited for another thread to steal
// them (45 µs on average for a Felix client's connection loop, measured
// with runtime/trace). If no timerfd can be had, the pacer falls back to
// that nanosleep.
func newPacer(clk clock, mode Pacing, est *paceEstimate) *pacer {
	if t, err := newTimerfdSleeper(); err == nil {
		return &pacer{clk: clk, mode: mode, est: est, sleep: t.sleep, release: t.close}
	}
	runtime.LockOSThread()
	old, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	restore := errno == 0
	if restore {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	}
	return &pacer{clk: clk, mode: mode, est: est, sleep: nanosleep, release: func() {
		if restore {
			_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, old, 0)
		}
		runtime.UnlockOSThread()
	}}
}

// timerfdSleeper sleeps on a non-blocking timerfd read through the
// netpoller. fd stays the descriptor of f: f.Fd() is never called, since it
// would switch the descriptor to blocking mode.
type timerfdSleeper struct {
	f  *os.File
	fd int
}

func newTimerfdSleeper() (*timerfdSleeper, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &timerfdSleeper{f: os.NewFile(uintptr(fd), "pacer-timerfd"), fd: fd}, nil
}

// sleep arms the timer ns from now and waits for it to expire.
func (t *timerfdSleeper) sleep(ns int64) {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(ns, 1))} // a zero value would disarm it
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		nanosleep(ns)
		return
	}
	var expirations [8]byte
	_, _ = t.f.Read(expirations[:])
}

func (t *timerfdSleeper) close() { _ = t.f.Close() }

// nanosleep blocks the thread for about ns nanoseconds (an interrupted sleep
// returns early; the caller loops).
func nanosleep(ns int64) {
	ts := syscall.NsecToTimespec(ns)
	_ = syscall.Nanosleep(&ts, nil)
}
