//go:build !unix

package commitlog

import "os"

// lockDir does not lock on this platform: only one Open per directory.
func lockDir(string) (*os.File, error) { return nil, nil }
