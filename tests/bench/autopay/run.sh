#!/usr/bin/env bash
# run.sh: autopay benchmark (issue 5). Not run by ctest; prints figures and
# never asserts a time.
#
#   tests/bench/autopay/run.sh [--kafka dev|real] [BUILD_DIR]   (default build/release)
#
# Settings (environment): N invoices (5000), RPS = STRIPE_MAX_RPS (100),
# LATENCY_MS of the stand-in (300), BENCH_LOG_LEVEL of the worker (info),
# KAFKA_PORT_BASE of the real cluster (stack-up.sh's --kafka-port-base,
# default 19092). --kafka real runs it on the 3-node Apache Kafka cluster
# (replication 3, min.insync.replicas 2) instead of the dev broker.
#
# Starts everything it uses and stops it on exit, by PID: its own local
# stack (deploy/local/stack-up.sh --dir <tmp>: PostgreSQL + dev broker), a
# Stripe stand-in with --latency-ms, and one billing-autopay-worker with
# STRIPE_MAX_RPS. Seeds N due invoices of one firm (seed.sql, set-based;
# autopay on_issue, pm_card_visa), publishes one autopay tick for that firm
# (billingctl autopay run --date D --firm-id F) and times until every
# invoice is paid. Prints charges/s, the time to drain, the share of the cap,
# and the stand-in's own count of the most requests it received in any
# one-second window (which must never exceed RPS).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
kafka=dev
if [ "${1:-}" = --kafka ]; then kafka=${2:-}; shift 2 || true; fi
case "$kafka" in dev|real) ;; *) echo "run.sh: --kafka must be dev or real" >&2; exit 2 ;; esac
build=$(cd "${1:-$root/build/release}" && pwd)
n=${N:-5000}
rps=${RPS:-100}
latency=${LATENCY_MS:-300}
day=2026-11-24
ctl="$build/workers/billingctl/billingctl"
worker="$build/workers/autopay/billing-autopay-worker"
standin_bin=${STANDIN_BIN:-$build/tests/standin/stripe-standin}
for b in "$ctl" "$worker" "$standin_bin"; do
  [ -x "$b" ] || { echo "run.sh: $b not built (cmake --build $build)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/llbench-autopay.XXXXXX)
stack="$work/stack"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$root/deploy/local/stack-down.sh" --dir "$stack" >/dev/null 2>&1 || true
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
q() { psql -X -qtA -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"; }

echo "== stack in $stack (kafka $kafka); load average $(cut -d' ' -f1-3 /proc/loadavg)"
kafka_args=(--kafka "$kafka")
[ "$kafka" = real ] && kafka_args+=(--kafka-port-base "${KAFKA_PORT_BASE:-19092}")
"$root/deploy/local/stack-up.sh" --dir "$stack" --build "$build" --db llbench_autopay "${kafka_args[@]}" >"$work/stack-up.log" 2>&1 ||
  { cat "$work/stack-up.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$stack/env"
set +a
export PGOPTIONS="-c client_min_messages=warning"

echo "== stripe-standin --latency-ms $latency"
key=sk_test_LlbenchAutopay0123456789
"$standin_bin" --listen 127.0.0.1:0 --addr-file "$work/standin.addr" --latency-ms "$latency" \
  --api-key "$key" >"$work/standin.out" 2>"$work/standin.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/standin.addr" ] && break; sleep 0.1; done
[ -s "$work/standin.addr" ] || { echo "run.sh: the stand-in did not start" >&2; exit 1; }
stripe_url=$(head -n 1 "$work/standin.addr")
stats() { curl -sf "$stripe_url/__standin/stats"; }
stat() { stats | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "== seeding $n due invoices"
t0=$(now_ms)
firm=$(psql -X -qtA -v ON_ERROR_STOP=1 -v n="$n" -v day="$day" "$DATABASE_URL" -f "$here/seed.sql" | tail -n 1)
echo "firm $firm seeded in $(( $(now_ms) - t0 )) ms"
due=$(q "SELECT count(*) FROM billing.invoices WHERE firm_id = $firm AND autopay_status = 'scheduled'")
[ "$due" -eq "$n" ] || { echo "run.sh: seeded $due due invoices, wanted $n" >&2; exit 1; }

prefix="llbench$$."
group="${prefix}billing-autopay-worker"
export KAFKA_TOPIC_PREFIX=$prefix
# A tick for a firm that does not exist creates the topic (the dev broker
# creates topics on produce; the real cluster's brokers have
# auto.create.topics.enable, kafka-up.sh) and charges nothing, so the worker subscribes
# to an existing topic and is known to be consuming before the clock starts.
LOG_LEVEL=warn "$ctl" autopay run --date "$day" --firm-id 999999999 >/dev/null
export TICK_SHARDS=${TICK_SHARDS:-12}
shards=$TICK_SHARDS
echo "== billing-autopay-worker, STRIPE_MAX_RPS=$rps"
STRIPE_API_BASE=$stripe_url STRIPE_SECRET_KEY=$key STRIPE_MAX_RPS=$rps \
  LOG_LEVEL=${BENCH_LOG_LEVEL:-info} "$worker" >"$work/worker.log" 2>&1 &
pids+=($!)
deadline=$(( $(date +%s) + 120 ))
until [ "$(q "SELECT count(*) FROM billing.processed_messages WHERE consumer = '$group'")" -ge "$shards" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: the worker did not get ready" >&2; tail "$work/worker.log" >&2; exit 1; }
  sleep 0.2
done
sleep 2 # let the group settle
[ "$(stat requests)" -eq 0 ] || { echo "run.sh: the stand-in was called before the tick" >&2; exit 1; }

echo "== one autopay tick for firm $firm ($day)"
t0=$(now_ms)
LOG_LEVEL=warn "$ctl" autopay run --date "$day" --firm-id "$firm" >/dev/null
deadline=$(( $(date +%s) + 1800 ))
first_ms=""
while :; do
  paid=$(q "SELECT count(*) FROM billing.invoices WHERE firm_id = $firm AND status = 'paid'")
  [ -z "$first_ms" ] && [ "$paid" -gt 0 ] && first_ms=$(( $(now_ms) - t0 ))
  [ "$paid" -ge "$n" ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: only $paid of $n paid after 30 min" >&2; exit 1; }
  sleep 0.1
done
drain_ms=$(( $(now_ms) - t0 ))

# What the stand-in saw, and what the database holds.
s=$(stats)
js() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$s"; }
created=$(js payment_intents_created)
requests=$(js requests)
most=$(js max_requests_in_any_second)
max_in_flight=$(js max_in_flight)
payments=$(q "SELECT count(*) FROM billing.payments p JOIN billing.invoices i ON i.id = p.invoice_id WHERE i.firm_id = $firm")
rate_x100=$(( n * 100000 / (drain_ms > 0 ? drain_ms : 1) )) # charges/s x 100
pct_x10=$(( rate_x100 * 10 / rps ))                           # % of the cap x 10

echo
echo "invoices paid:            $n (payments rows: $payments)"
echo "time to drain:            $drain_ms ms (tick published -> every invoice paid; first paid after ${first_ms:-?} ms)"
echo "charges/s:                $(( rate_x100 / 100 )).$(printf %02d $(( rate_x100 % 100 )))"
echo "share of the cap ($rps/s): $(( pct_x10 / 10 )).$(( pct_x10 % 10 ))%  (goal >= 90%)"
echo "stand-in: requests $requests, payment intents created $created, max in flight $max_in_flight"
echo "stand-in: max requests in any one-second window: $most (cap $rps)"
[ "$most" -le "$rps" ] || echo "WARNING: the stand-in saw $most requests in one second, above the cap of $rps"
[ "$created" -eq "$n" ] || echo "WARNING: $created payment intents created for $n invoices"
[ "$payments" -eq "$n" ] || echo "WARNING: $payments payments for $n invoices"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs in $work"
