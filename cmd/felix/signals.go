package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// exitProcess ends the process; a variable for tests.
var exitProcess = os.Exit

// exitOnSecondSignal makes another SIGINT or SIGTERM during the drain end
// the process at once with status 1 (an operator pressing Ctrl-C twice, or
// a supervisor that will not wait). Nothing acknowledged is lost: records
// acked under fsync always are on disk, the others are in the page cache a
// process exit does not drop. Call the returned stop when the drain is over.
func exitOnSecondSignal(log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			log.Warn("second signal: exiting without finishing the drain", "signal", sig.String())
			exitProcess(1)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
