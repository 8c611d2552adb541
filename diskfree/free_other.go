//go:build !linux && !darwin && !freebsd && !dragonfly && !windows

package diskfree

// osFree is not available on this platform: Start warns and turns the
// guard off.
func osFree(string) (uint64, error) { return 0, errUnsupported }
