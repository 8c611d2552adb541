//go:build unix

package main

import (
	"log/slog"
	"os"
	"syscall"
)

// reportOpenFiles warns, once the durable logs are open, when the broker
// already uses over half of its open-files limit: every durable stream and
// every queue group's state holds its log's files open, so the streams and
// groups added later (control plane, consumers) would find none left.
func reportOpenFiles(log *slog.Logger) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if fds, err = os.ReadDir("/dev/fd"); err != nil {
			return
		}
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	warnOpenFiles(log, uint64(len(fds)), uint64(lim.Cur))
}

func warnOpenFiles(log *slog.Logger, open, limit uint64) {
	if open > limit/2 {
		log.Warn("over half of the open-files limit in use", "open_files", open, "limit", limit,
			"fix", "each durable stream and each queue group's state holds one file per log segment plus one; "+
				"raise the limit (LimitNOFILE= in a systemd unit, ulimit -n) before adding more")
	}
}
