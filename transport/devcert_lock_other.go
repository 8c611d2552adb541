//go:build !unix

package transport

// lockDir does nothing where flock is not available; persistentDevCert
// is still serialized within the process.
func lockDir(string) (func(), error) { return func() {}, nil }
