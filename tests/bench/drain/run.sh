#!/usr/bin/env bash
# run.sh: backlog drain (issue 20 item 2). Not run by ctest; prints figures
# and never asserts a time.
#
#   tests/bench/drain/run.sh [--kafka dev|real] [BUILD_DIR]   (default build/release)
#
# The dev broker (librdkafka's mock cluster) appears to keep only ~12,000 of
# these webhooks per topic and drops the oldest of a larger backlog (seen
# at N=20000: the first 7,315 were never delivered): use --kafka real for
# N above ~10,000; a stall of STALL_S (60) seconds without progress ends
# the run with the count of what was not applied.
#
# Settings (environment): N webhooks (100000), INSTANCES the worker counts
# to time, in order (default "1 2"), INFLIGHT of the poster (32),
# BENCH_LOG_LEVEL of the worker (info), LOG_STATEMENTS=1 (log every
# statement: the server log is kept in STACK_DIR's server dir), STACK_DIR (default
# <checkout>/.stack/bench-drain-<pid>).
#
# Starts everything it uses and stops it on exit, by PID: its own local
# stack (PostgreSQL + the dev broker; track_commit_timestamp turned on),
# billing-ingester, and billing-autopay-worker instances. Seeds N invoices
# with our own processing attempts once (../e2e/seed.sql) and copies the
# database (CREATE DATABASE ... TEMPLATE, untimed) for each measurement and
# the floor. For each worker count K: N signed payment_intent.succeeded
# webhooks are posted through the ingester under a topic prefix of their
# own while no consumer runs (every one answered 200: durably in Kafka),
# then K workers start on that copy and the clock runs until every invoice
# has its payment. Floor, in the same run: pgbench (floor.sql: the worker's
# statements for one event, one transaction each, 2 clients) on its own
# copy. Prints events/s of each and the ratio to the floor.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
kafka=dev
if [ "${1:-}" = --kafka ]; then kafka=$2; shift 2; fi
case "$kafka" in dev|real) ;; *) echo "run.sh: --kafka must be dev or real" >&2; exit 2 ;; esac
build=$(cd "${1:-$root/build/release}" && pwd)
n=${N:-100000}
instances=${INSTANCES:-1 2}
inflight=${INFLIGHT:-32}
loglevel=${BENCH_LOG_LEVEL:-info}
ingester="$build/workers/ingester/billing-ingester"
worker="$build/workers/autopay/billing-autopay-worker"
post="$build/tests/bench/e2e/bench-e2e-post"
fixture=${FIXTURE:-$root/../shared/fixtures/stripe/payment_intent.succeeded.json}
for b in "$ingester" "$worker" "$post"; do
  [ -x "$b" ] || { echo "run.sh: $b not built (cmake --build $build)" >&2; exit 1; }
done
command -v pgbench >/dev/null || { echo "run.sh: pgbench not found (postgresql-contrib)" >&2; exit 1; }
[ -f "$fixture" ] || { echo "run.sh: no payment_intent.succeeded fixture (set FIXTURE)" >&2; exit 1; }

stack=${STACK_DIR:-$root/.stack/bench-drain-$$}
work="$stack/run"
mkdir -p "$work"
pids=()
stop_pids() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_pids
  "$root/deploy/local/stack-down.sh" --dir "$stack" >/dev/null 2>&1 || true
}
trap cleanup EXIT
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
url_of() { echo "${1%/*}/$2"; } # URL database
q() { psql -X -qtA -v ON_ERROR_STOP=1 "$(url_of "$OWNER_DATABASE_URL" "$1")" -c "$2"; }
ratio() { python3 -c "import sys; print('%.1f' % (100.0 * float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
cpu_ms() { # pid... -> user+system CPU ms of those processes
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
  done
  echo $(( t * 1000 / $(getconf CLK_TCK) ))
}
per_s() { python3 -c "import sys; print('%.0f' % (float(sys.argv[1]) * 1000.0 / max(float(sys.argv[2]), 1)))" "$1" "$2"; }

echo "== stack in $stack"
"$root/deploy/local/stack-up.sh" --dir "$stack" --build "$build" --db llbench_drain --kafka "$kafka" \
  >"$work/stack-up.log" 2>&1 || { cat "$work/stack-up.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$stack/env"
set +a
export PGOPTIONS="-c client_min_messages=warning"
sdir=$(cat "$stack/pg/serverdir")
data="$sdir/data"
pgbin=$(dirname "$(head -n 1 "$data/postmaster.opts" | awk '{print $1}')")
q llbench_drain "ALTER SYSTEM SET track_commit_timestamp = on" >/dev/null
# LOG_STATEMENTS=1: every statement and its duration in the server's log
# (to compare the worker's statements with floor.sql's; slows everything).
[ "${LOG_STATEMENTS:-0}" = 1 ] &&
  q llbench_drain "ALTER SYSTEM SET log_min_duration_statement = 0" >/dev/null
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u "$(stat -c %U "$data")" --)
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" restart -w -m fast -l "$sdir/postgres.log" >/dev/null

echo "== seeding $n invoices with processing attempts"
t0=$(now_ms)
firm=$(psql -X -qtA -v ON_ERROR_STOP=1 -v n="$n" -v day=2026-11-24 \
  "$(url_of "$OWNER_DATABASE_URL" llbench_drain)" -f "$here/../e2e/seed.sql" | tail -n 1)
psql -X -qtA -v ON_ERROR_STOP=1 "$(url_of "$OWNER_DATABASE_URL" llbench_drain)" -c "\\copy (
  SELECT invoice_id, firm_id, idempotency_key, stripe_payment_intent_id, amount_cents
  FROM billing.payment_attempts WHERE firm_id = $firm ORDER BY invoice_id)
  TO '$work/all.events' WITH (DELIMITER ' ')"
q llbench_drain "VACUUM ANALYZE" >/dev/null
echo "seeded in $(( $(now_ms) - t0 )) ms"
copies="floor"
for k in $instances; do copies="$copies w$k"; done
# On the real cluster each worker count's topics get the contract's
# partition counts (deploy/kafka/create-topics.sh: 12 for stripe.payments),
# as production creates them, not the brokers' auto-created default: a
# second kafka-up.sh on the stack's cluster only creates what is missing.
if [ "$kafka" = real ]; then
  for k in $instances; do
    "$root/deploy/local/kafka/kafka-up.sh" --dir "$stack/kafka" --build "$build" \
      --topic-prefix "llbench$$.w$k." >>"$work/stack-up.log" 2>&1 ||
      { tail -n 5 "$work/stack-up.log" >&2; exit 1; }
  done
fi
for c in $copies; do
  q postgres "CREATE DATABASE llbench_drain_$c TEMPLATE llbench_drain" >/dev/null
done

export STRIPE_WEBHOOK_SECRET=whsec_LlbenchDrain0123456789abcd
port=$(( 20000 + $$ % 20000 ))
echo "== posting $n webhooks per worker count through billing-ingester, no consumer running"
for k in $instances; do
  env -u DATABASE_URL KAFKA_TOPIC_PREFIX="llbench$$.w$k." INGESTER_LISTEN=127.0.0.1:$port \
    LOG_LEVEL=warn "$ingester" >"$work/ingester-w$k.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  "$post" --url "http://127.0.0.1:$port/webhooks/stripe" --fixture "$fixture" \
    --events "$work/all.events" --out "$work/post-w$k.out" --inflight "$inflight" |
    tee "$work/post-w$k.txt"
  stop_pids
done

declare -A ms
for k in $instances; do
  db=llbench_drain_w$k
  echo "== $k worker(s) on $db"
  t0=$(now_ms)
  for i in $(seq 1 "$k"); do
    DATABASE_URL=$(url_of "$WORKER_DATABASE_URL" "$db") KAFKA_TOPIC_PREFIX="llbench$$.w$k." \
      STRIPE_API_BASE=http://127.0.0.1:9 STRIPE_SECRET_KEY=sk_test_LlbenchDrain0123456789 \
      LOG_LEVEL="$loglevel" "$worker" >"$work/worker-w$k-$i.log" 2>&1 &
    pids+=($!)
  done
  deadline=$(( $(date +%s) + 3600 ))
  last=-1
  still=$(date +%s)
  while :; do
    got=$(q "$db" "SELECT count(*) FROM billing.payments")
    [ "$got" -ge "$n" ] && break
    [ "$got" -ne "$last" ] && { last=$got; still=$(date +%s); }
    # No progress for STALL_S: the rest is not coming (e.g. the dev broker
    # dropped the oldest messages of a backlog larger than it keeps).
    if [ $(( $(date +%s) - still )) -ge "${STALL_S:-60}" ]; then
      echo "run.sh: $k worker(s) stalled at $got of $n applied for ${STALL_S:-60} s; not applied:" \
        "$(q "$db" "SELECT count(*) || ' invoices, ids ' || min(invoice_id) || '-' || max(invoice_id)
          FROM billing.payment_attempts WHERE status = 'processing'")" >&2
      exit 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: not drained after an hour" >&2; exit 1; }
    sleep 0.5
  done
  ms[$k]=$(( $(now_ms) - t0 ))
  # Where the time went: CPU of the workers and of their database backends.
  wcpu=$(cpu_ms "${pids[@]}")
  # shellcheck disable=SC2046
  bcpu=$(cpu_ms $(q "$db" "SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND usename = 'billing_worker'"))
  stop_pids
  echo "$k worker(s): CPU of the worker processes $wcpu ms, of their backends $bcpu ms, wall ${ms[$k]} ms x $k"
  span=$(q "$db" "SELECT round(extract(epoch FROM max(pg_xact_commit_timestamp(xmin))
    - min(pg_xact_commit_timestamp(xmin))) * 1000) FROM billing.payments")
  paid=$(q "$db" "SELECT count(*) FROM billing.invoices WHERE firm_id = $firm AND status = 'paid'")
  echo "$k worker(s): $n applied in ${ms[$k]} ms from start ($(per_s "$n" "${ms[$k]}")/s), first to last payment commit ${span} ms ($(per_s "$n" "$span")/s); invoices paid $paid"
  ms[$k.span]=$span
done

echo "== floor: pgbench, 2 clients, $n transactions (floor.sql)"
db=llbench_drain_floor
q "$db" "CREATE SCHEMA bench_floor;
  CREATE TABLE bench_floor.events AS
    SELECT row_number() OVER (ORDER BY invoice_id) AS k, invoice_id, idempotency_key AS attempt_key,
           stripe_payment_intent_id AS pi, amount_cents AS amount,
           'evt_llbfloor' || invoice_id AS evt
    FROM billing.payment_attempts WHERE firm_id = $firm;
  CREATE UNIQUE INDEX ON bench_floor.events (k);
  CREATE SEQUENCE bench_floor.next;
  GRANT USAGE ON SCHEMA bench_floor TO billing_worker;
  GRANT SELECT ON bench_floor.events TO billing_worker;
  GRANT USAGE, UPDATE ON SEQUENCE bench_floor.next TO billing_worker;
  ANALYZE bench_floor.events" >/dev/null
charge=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data']['object']['latest_charge'])" "$fixture")
sed -e "s/@DAY@/$(date -u +%F)/g" -e "s/@CHARGE@/$charge/g" "$here/floor.sql" >"$work/floor.sql"
t0=$(now_ms)
pgbench -n -M extended -c 2 -j 2 -t $(( n / 2 )) -f "$work/floor.sql" \
  "$(url_of "$WORKER_DATABASE_URL" "$db")" >"$work/pgbench.txt" 2>&1 ||
  { cat "$work/pgbench.txt" >&2; exit 1; }
floor_ms=$(( $(now_ms) - t0 ))
fpaid=$(q "$db" "SELECT count(*) FROM billing.invoices WHERE firm_id = $firm AND status = 'paid'")
grep -E "tps|latency average|failed" "$work/pgbench.txt" || true
echo "floor: $fpaid invoices paid in $floor_ms ms ($(per_s "$n" "$floor_ms")/s)"

echo
echo "| N | floor (pgbench, 2 clients) | $(for k in $instances; do printf '%s worker(s) | ' "$k"; done)"
printf '| %s | %s ms = %s/s |' "$n" "$floor_ms" "$(per_s "$n" "$floor_ms")"
for k in $instances; do
  printf ' %s ms = %s/s (%s%% of the floor; commit span %s ms) |' "${ms[$k]}" "$(per_s "$n" "${ms[$k]}")" \
    "$(ratio "$floor_ms" "${ms[$k]}")" "${ms[$k.span]}"
done
echo
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg); logs in $work"
