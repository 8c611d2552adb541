// Package testbrowser starts headless chromium for tests that drive a
// page (the dashboard): the browser scripts/chromium.sh installs.
package testbrowser

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is the browser scripts/chromium.sh installs and checks:
// $FELIX_CHROMIUM, default Debian's /usr/bin/chromium.
func Path() string {
	if p := os.Getenv("FELIX_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// Start starts headless chromium for the test and returns a context that
// drives it (chromedp.Run), ended with the test; it skips the test when
// the browser is not installed, and fails it under CI=true.
func Start(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	bin := Path()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: run scripts/chromium.sh install", bin)
		}
		t.Skipf("%s is missing (scripts/chromium.sh install)", bin)
	}
	actx, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancel)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return bctx
}
