#!/usr/bin/env bash
# chromium.sh — install Debian's chromium for the dashboard's browser test
# (metrics/dashboard_browser_test.go drives /usr/bin/chromium headless).
#
#   scripts/chromium.sh install   apt-get install chromium (no-op when /usr/bin/chromium exists)
#   scripts/chromium.sh status    print the chromium binary and version, or "missing"
#
# Environment:
#   FELIX_CHROMIUM   path of the browser binary (default /usr/bin/chromium)
set -euo pipefail

bin="${FELIX_CHROMIUM:-/usr/bin/chromium}"

sudo_if_needed() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

case "${1:-}" in
install)
	if [ -x "$bin" ]; then
		echo "chromium: $bin already installed"
		exit 0
	fi
	sudo_if_needed apt-get update
	DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y --no-install-recommends chromium
	"$bin" --version
	;;
status)
	if [ -x "$bin" ]; then
		echo "chromium: $bin: $("$bin" --version 2>/dev/null || echo unknown version)"
	else
		echo "chromium: missing (run scripts/chromium.sh install)"
		exit 1
	fi
	;;
*)
	echo "usage: $0 install|status" >&2
	exit 2
	;;
esac
