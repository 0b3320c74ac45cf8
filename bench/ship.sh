#!/usr/bin/env bash
# The ship benchmark: the example site (nginx, uWSGI, sqlite) shipped to
# this machine over SSH by djship, side by side with a floor script that
# does the same work in one ssh session with nothing skipped. Prints the
# medians of ROUNDS rounds (default 5) for a full ship and a code-only
# re-ship, their ratios, the SSH connections and sessions djship opened,
# and the code-only upgrade with 2, 4 and 8 workers. Needs root and the
# packages the tests need (go tool mage test installs them as root).
set -euo pipefail
cd "$(dirname "$0")/.."
export DJSHIP_BENCH_ROUNDS="${1:-5}"
go test -run '^$' -bench '^BenchmarkShip$' -benchtime 1x -timeout 60m ./targets
