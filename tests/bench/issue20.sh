#!/usr/bin/env bash
# tests/bench/issue20.sh: every measurement of issue 20 (docs/BENCHMARKS.md,
# "End to end", "Ingester", "Item 4"), each RUNS times, one after another,
# on a machine that should be doing nothing else. It only sequences the
# benchmarks' own commands (each starts and stops what it uses) and keeps
# their output; the figures are theirs.
#
#   tests/bench/issue20.sh [BUILD_DIR]      (default build/release)
#
# Env: RUNS (3), ITEMS (which to run, any of "1 2 3 4"; default all),
#      OUT (where each run's output goes; default a new /tmp/ll-issue20-*),
#      E2E_RATES (item 1's rates, default "1000 50"; each for E2E_DURATION,
#      60 s, at 1000/s on the dev broker only E2E_DEV_DURATION, 10 s: the dev
#      broker keeps ~12,000 webhooks and drops the oldest of a larger
#      backlog), DRAIN_N (item 2, 100000 on the real cluster), INVOICING_N
#      (item 4, 1000000).
# Prints a line per run as it starts and ends (time, load average, exit
# status) and, at the end, the last SUMMARY_LINES (20) lines of each run.
# Time on the 2-core machine, RUNS=3, quiet: item 1 about 60 minutes, item 2
# about 90, item 3 about 30, item 4 about 30.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
runs=${RUNS:-3}
items=${ITEMS:-1 2 3 4}
out=${OUT:-$(mktemp -d /tmp/ll-issue20-XXXXXX)}
mkdir -p "$out"
case "$runs" in '' | *[!0-9]* | 0) echo "issue20.sh: RUNS must be a positive integer" >&2; exit 2 ;; esac

status=0
# run NAME COMMAND...: one benchmark run, its output in OUT/NAME.log.
run() {
  local name=$1 rc=0
  shift
  echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $name: $*"
  "$@" >"$out/$name.log" 2>&1 || rc=$?
  echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $name: exit $rc"
  [ "$rc" -eq 0 ] || status=1
}

# Item 4's invoicing on a stack with the real cluster (the script takes its
# broker from the stack's env); the stack is its own and stopped after.
invoicing_real() { # N
  local stack="$root/.stack/issue20-invoicing-$$" rc=0
  "$root/deploy/local/stack-up.sh" --dir "$stack" --build "$build" --db llbench_inv --kafka real \
    --kafka-port-base 29192 || return 1
  (set -a; . "$stack/env"; set +a; BUILD="$build" "$here/invoicing/run.sh" "$1") || rc=1
  "$root/deploy/local/stack-down.sh" --dir "$stack" >/dev/null 2>&1 || true
  return "$rc"
}

for item in $items; do
  for i in $(seq 1 "$runs"); do
    case "$item" in
      1)
        for rate in ${E2E_RATES:-1000 50}; do
          d=${E2E_DURATION:-60}
          [ "$rate" -ge 1000 ] && d=${E2E_DEV_DURATION:-10}
          run "e2e-dev-$rate-$i" env RATE="$rate" DURATION="$d" "$here/e2e/run.sh" --kafka dev "$build"
          run "e2e-real-$rate-$i" env RATE="$rate" DURATION="${E2E_DURATION:-60}" \
            "$here/e2e/run.sh" --kafka real "$build"
        done
        ;;
      2) run "drain-real-$i" env N="${DRAIN_N:-100000}" INFLIGHT=64 "$here/drain/run.sh" --kafka real "$build" ;;
      3)
        [ "$i" -eq 1 ] || continue # RUNS repeats inside one invocation
        run "ingester-dev" env RUNS="$runs" DURATION=15s "$here/ingester/run.sh" --kafka dev "$build"
        run "ingester-real" env RUNS="$runs" DURATION=15s "$here/ingester/run.sh" --kafka real "$build"
        ;;
      4)
        run "autopay-real-$i" env KAFKA_PORT_BASE=29092 "$here/autopay/run.sh" --kafka real "$build"
        run "invoicing-real-$i" invoicing_real "${INVOICING_N:-1000000}"
        ;;
      *) echo "issue20.sh: no item $item (1-4)" >&2; exit 2 ;;
    esac
  done
done

echo "== summaries (logs in $out): the last lines of each run"
for f in "$out"/*.log; do
  echo "-- $(basename "$f" .log)"
  tail -n "${SUMMARY_LINES:-20}" "$f"
done
exit "$status"
