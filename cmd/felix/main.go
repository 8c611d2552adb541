// Command felix is the single Felix binary: the broker (serve) and the
// client tools (pub, sub, cache, queue, token, bench, demo, version).
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "felix:", err)
		os.Exit(1)
	}
}
