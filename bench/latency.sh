#!/usr/bin/env bash
# The latency benchmark: the example site (nginx, uWSGI, sqlite) shipped
# to this machine over SSH through a proxy that delays each direction by
# 0, 25 and 50 ms (DELAYS, one way, in milliseconds), as distant hosts
# are. Prints the medians of ROUNDS rounds (default 3) of a full ship and
# a code-only ship, by djship and by the floor (one ssh session doing the
# same work), and the round trips each waits for: the time added divided
# by the round trip added. Needs root and the packages the tests need
# (go tool mage test installs them as root).
set -euo pipefail
cd "$(dirname "$0")/.."
export DJSHIP_BENCH_ROUNDS="${1:-3}"
export DJSHIP_BENCH_DELAYS="${DELAYS:-0,25,50}"
go test -run '^$' -bench '^BenchmarkLatency$' -benchtime 1x -timeout 60m ./targets
