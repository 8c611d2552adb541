// Command felix is the single Felix binary: the broker (serve) and the
// client tools (pub, sub, cache, queue, token, bench, demo, version).
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(1)
	}
}

// errorLine is the message a failed command prints: prefixed "felix: "
// once (errors from the SDK already carry the prefix).
func errorLine(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "felix: ") {
		return msg
	}
	return "felix: " + msg
}
