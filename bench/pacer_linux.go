//go:build linux

package bench

import (
	"runtime"
	"syscall"
)

// prctl(2) options from <linux/prctl.h>.
const (
	prSetTimerSlack = 29
	prGetTimerSlack = 30 // returns the current slack as the call's result
)

// newPacer locks the calling goroutine to its thread and makes that
// thread's sleeps precise; close restores both.
func newPacer(clk clock, mode Pacing, est *paceEstimate) *pacer {
	runtime.LockOSThread()
	old, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	restore := errno == 0
	if restore {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1, 0)
	}
	return &pacer{clk: clk, mode: mode, est: est, release: func() {
		if restore {
			_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, old, 0)
		}
		runtime.UnlockOSThread()
	}}
}

// sleepNs blocks the thread for about ns nanoseconds (an interrupted sleep
// returns early; the caller loops).
func sleepNs(ns int64) {
	ts := syscall.NsecToTimespec(ns)
	_ = syscall.Nanosleep(&ts, nil)
}
