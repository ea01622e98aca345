#!/usr/bin/env bash
# tests/run.sh: the one command that runs every test.
#
# Installs missing Debian packages, builds a Release build and a sanitizer
# build (AddressSanitizer + UndefinedBehaviorSanitizer), starts a private
# PostgreSQL and Kafka for each (a real 3-node Apache Kafka cluster for the
# Release build, the dev broker for the sanitizer build), runs ctest for
# both builds against them and
# stops everything it started, also on failure. Exits non-zero on any failure.
#
#   tests/run.sh [ctest args...]     e.g. tests/run.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

deploy/local/deps.sh

# The style first: a file that differs from .clang-format fails the run
# before anything is built (tests/style.sh --fix reformats).
echo "== style"
tests/style.sh

build() { # dir build-type [cmake args...]
  local dir=$1 type=$2; shift 2
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}
echo "== build: release"
build build/release Release
echo "== build: sanitize (address, undefined)"
build build/sanitize Debug -DLEDGERLINE_SANITIZE=ON

# Each build gets its own PostgreSQL and dev broker, so the two runs never
# see each other's rows or messages (ids coincide across the two databases).
state="$root/.stack/test-$$"
cleanup() {
  for b in release sanitize; do
    deploy/local/stack-down.sh --dir "$state/$b" >/dev/null 2>&1 || true
  done
  rm -rf "$state"
}
trap cleanup EXIT INT TERM

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LOG_LEVEL=${LOG_LEVEL:-warn}

# The two builds run side by side, each against its own stack: most of a
# test's time is spent waiting (consumer-group joins, broker round trips,
# the Stripe stand-in's latency), so on two cores this halves the wall time.
# Each run's output goes to a log printed when it ends.
# The Release suite runs on a real 3-node Apache Kafka cluster (KRaft,
# replication factor 3, min.insync.replicas 2; fetched through Maven on
# first use); the sanitizer suite stays on the dev broker. Without java
# or mvn the Release suite falls back to the dev broker, saying so.
kafka_of() { # build
  if [ "$1" = release ] && command -v java >/dev/null && command -v mvn >/dev/null; then
    echo real
  else
    echo dev
  fi
}
run_build() { # build
  local b=$1 kafka
  kafka=$(kafka_of "$b")
  if [ "$b" = release ] && [ "$kafka" = dev ]; then
    echo "== warning: java or mvn missing: the Release suite runs on the dev broker"
  fi
  echo "== stack for $b: postgresql + $kafka kafka"
  deploy/local/stack-up.sh --dir "$state/$b" --build "build/$b" --db "ledgerline_$b" \
    --kafka "$kafka" --kafka-port-base 19092 || return 1
  local rc=0
  (
    set -a
    # shellcheck disable=SC1090
    . "$state/$b/env"
    set +a
    # The kafka_real tests reuse the stack's cluster instead of starting
    # their own (they restart any node they kill).
    [ "$kafka" = dev ] || export KAFKA_REAL_DIR="$state/$b/kafka"
    local args=("${ctest_args[@]}")
    # The real-cluster tests run once, on the Release build's cluster: in
    # the sanitizer build they would start three more JVMs on two cores.
    if [ "$b" = sanitize ] && [ "$run_faults" -eq 1 ]; then
      args=(-LE 'faults|kafka_real')
    fi
    ctest --test-dir "build/$b" --output-on-failure --timeout 900 "${args[@]}"
  ) || rc=1
  deploy/local/stack-down.sh --dir "$state/$b" >/dev/null 2>&1 || true
  return "$rc"
}
# With no arguments: everything, the fault suite last and one build at a
# time (it starts its own PostgreSQL, broker, stand-in and every process,
# and is the one suite that needs the CPU to itself to stay in its bound).
if [ $# -eq 0 ]; then
  ctest_args=(-LE faults)
  run_faults=1
else
  ctest_args=("$@")
  run_faults=0
fi
mkdir -p "$state"
declare -A pids
for b in release sanitize; do
  run_build "$b" >"$state/$b.log" 2>&1 &
  pids[$b]=$!
done
status=0
for b in release sanitize; do
  rc=0
  wait "${pids[$b]}" || rc=1
  echo "== ctest: $b (exit $rc)"
  cat "$state/$b.log"
  [ "$rc" -eq 0 ] || status=1
done
# The fault suite of the Release build runs on a real cluster of its own
# (FAULTS_KAFKA=real: kreal.c starts it, about 10 s, and stops it): the
# stack's cluster is stopped by then with the rest of the stack, and a fresh
# one carries none of the other suites' topics, groups and producer ids
# into a run that kills and stops its nodes. The sanitizer build's stays on
# the dev broker.
if [ "$run_faults" -eq 1 ]; then
  for b in release sanitize; do
    echo "== fault suite: $b ($(kafka_of "$b") kafka)"
    FAULTS_KAFKA=$(kafka_of "$b") \
      ctest --test-dir "build/$b" -L faults --output-on-failure --timeout 900 || status=1
  done
fi
[ "$status" -eq 0 ] && echo "== all tests passed" || echo "== TESTS FAILED"
exit "$status"
