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
// once. Errors from the SDK already carry the prefix, in front or, when
// something wrapped one with its context ("demo orders: subscribe to the
// dead-letter stream: felix: server: stream not found"), inside: the
// inner one is dropped, so the line says felix once.
func errorLine(err error) string {
	msg := strings.ReplaceAll(err.Error(), ": felix: ", ": ")
	if strings.HasPrefix(msg, "felix: ") {
		return msg
	}
	return "felix: " + msg
}
