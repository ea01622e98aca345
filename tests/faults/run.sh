#!/usr/bin/env bash
# run.sh: runs the fault suite (test_faults) outside ctest, e.g. with other
# sizes or a fixed seed. It needs nothing running: it starts (and stops) its
# own PostgreSQL cluster, dev broker, Stripe stand-in and every process.
# FAULTS_KAFKA=real: a real 3-node Apache Kafka cluster instead of the dev
# broker (started and stopped through tests/kafka_real/kreal.c; needs java
# and mvn), with node faults (leader SIGKILL, minority SIGKILL, every node
# stopped for 20 s).
#
#   tests/faults/run.sh [BUILD_DIR]          (default build/release)
#   FAULTS_SEED=514521 FAULTS_KEEP=1 tests/faults/run.sh /tmp/me-asan
#   FAULTS_KAFKA=real tests/faults/run.sh
#
# Knobs (environment): FAULTS_EVENTS, FAULTS_ENGAGEMENTS, FAULTS_SEED,
# FAULTS_DIR, FAULTS_KEEP=1, FAULTS_TIME_LIMIT, FAULTS_POST_SPREAD_MS,
# FAULTS_LOG_LEVEL, FAULTS_SKIP_VERIFY=1, FAULTS_KAFKA=real|dev (see tests/faults/faults.c).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
[ -f "$build/CMakeCache.txt" ] || { echo "run.sh: $build is not a CMake build directory" >&2; exit 2; }
cmake --build "$build" --target test_faults -j 2 >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/tests/faults/test_faults"
