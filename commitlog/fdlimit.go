package commitlog

import (
	"errors"
	"fmt"
	"syscall"
)

// explainFDs adds to an error of a process out of file descriptors what
// uses them and what to do: an open log holds every segment file and its
// lock for its life, so a broker with thousands of durable streams needs
// a higher limit than most systems give by default.
func explainFDs(err error) error {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return fmt.Errorf("%w (out of file descriptors: an open log holds one per segment file plus one for its lock; "+
			"raise the open-files limit, e.g. LimitNOFILE= in a systemd unit or ulimit -n)", err)
	}
	return err
}
