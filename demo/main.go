package demo

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main runs demo name against an embedded broker as a program's main:
// output on stdout, stopped by SIGINT or SIGTERM or after a minute, exit
// status 1 when the demo fails. The programs in examples/ are this call.
func Main(name string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := Run(ctx, name, os.Stdout, Options{})
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
