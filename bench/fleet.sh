#!/usr/bin/env bash
# The fleet benchmark: a code-only ship of the example project (nginx,
# uWSGI, PostgreSQL on a db host) to 1, 4 and 8 simulated web hosts,
# fresh systemd machines on one bridge, side by side with a baseline
# that ships each host as an environment of its own, all at once. Prints
# the medians of ROUNDS rounds (default 3), the ratio to one host, the
# switch window and the CPU seconds spent; then the requests through an
# nginx load balancer during a rolling ship and a rolling rollback, and
# how many failed. Needs root, systemd-container,
# debootstrap and the packages the tests need (go tool mage test
# installs them as root).
set -euo pipefail
cd "$(dirname "$0")/.."
export DJSHIP_BENCH_ROUNDS="${1:-3}" DJSHIP_BENCH_HOSTS="${2:-1,4,8}"
go test -run '^$' -bench '^BenchmarkFleetShip$' -benchtime 1x -timeout 60m ./targets
