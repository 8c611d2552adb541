#!/usr/bin/env bash
# bench-baseline.sh — measure the peers side by side in one run: NATS core
# pub/sub and the raw quic-go relay at fanout 1 and 10, and the raw quic-go
# echo round trip, 256-byte messages at 10 000/s, 20 000 measured after
# 2 000 of warm-up. The quic-go peer runs inside the test process here
# (felix bench --compare quic runs it as a separate process, as nats-server
# is, which costs it a cross-process wake-up per packet). Prints one
# table; a measurement, not a test (it lives in bench/baseline_test.go and is
# skipped unless FELIX_BENCH_BASELINE=1, which this script sets).
#
# It starts its own nats-server on a free 127.0.0.1 port (install one with
# scripts/peers.sh install) unless FELIX_NATS_URL names a running one.
#
# Environment:
#   FELIX_BENCH_ROUNDS=N       repeat the five cases N times, interleaved (default 1)
#   FELIX_BENCH_PACING=MODE    sleep (default), adaptive or spin: see bench.Pacing
#   FELIX_BENCH_JSON=FILE      also write the JSON report to FILE
#   FELIX_NATS_URL=URL         use this nats instead of starting one
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FELIX_BENCH_BASELINE=1 exec go test -count=1 -timeout 20m -run '^TestBaselineReport$' -v ./bench/ "$@"
