#!/usr/bin/env bash
# run.sh: invoicing benchmark (issue 4). Not run by ctest.
#
#   tests/bench/invoicing/run.sh [N]        (N engagements, default 1000000)
#
# Needs OWNER_DATABASE_URL (else DATABASE_URL: a superuser's URL of a
# migrated database of a local stack, used only as the schema template) and
# KAFKA_BROKERS, e.g.
#   deploy/local/stack-up.sh --dir /tmp/bench-stack --build build/release --db bench
#   set -a; . /tmp/bench-stack/env; set +a; tests/bench/invoicing/run.sh 100000
# BUILD (default build/release) holds billingctl and billing-invoicing-worker.
#
# Seeds N engagements (seed.sql) into database llbench_seed once, then for
# each measurement copies it to a fresh llbench_run (CREATE DATABASE ...
# TEMPLATE, not timed) and times:
#   floor     one hand-written INSERT ... SELECT (floor.sql) via psql, writing
#             the same rows (invoices, lines, audit, outbox, time entries
#             marked) through the same triggers as the worker;
#   bare floor  the same floor.sql against copies of the tables it writes
#             with only their primary keys (bare_setup.sql, untimed): no
#             foreign keys, checks, triggers or secondary indexes; what the
#             machine can do at all for these rows (BARE=0 skips it);
#   1 worker  / 2 workers: from `billingctl invoices generate --date` (one
#             tick, 12 shards) until every shard's key is recorded, i.e. every
#             invoice committed; then until the outbox is relayed.
# Prints invoices/s (integer: invoices * 1000 / ms) for each. WORKERS lists
# the worker counts to time (default "1 2"; WORKERS=0 times only the floors).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
n=${1:-1000000}
build=${BUILD:-$root/build/release}
ctl="$build/workers/billingctl/billingctl"
worker="$build/workers/invoicing/billing-invoicing-worker"
date=2026-11-24
: "${DATABASE_URL:?source the stack env first}" "${KAFKA_BROKERS:?source the stack env first}"
for b in "$ctl" "$worker"; do [ -x "$b" ] || { echo "run.sh: $b not built" >&2; exit 1; }; done
# It creates and drops databases: the stack's superuser (OWNER_DATABASE_URL
# of the stack env) when there is one, not its operator's DATABASE_URL.
admin_url=${OWNER_DATABASE_URL:-$DATABASE_URL}
base=${admin_url%/*}
template=${admin_url##*/}
seed_url="$base/llbench_seed"
run_url="$base/llbench_run"
logdir=$(mktemp -d /tmp/llbench.XXXXXX)
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
adm() { psql -X -q -v ON_ERROR_STOP=1 "$base/postgres" -c "$1" >/dev/null; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 "$run_url" -c "$1"; }
rate() { echo $(( $1 * 1000 / ($2 > 0 ? $2 : 1) )); }
fresh_run_db() {
  adm "DROP DATABASE IF EXISTS llbench_run"
  adm "CREATE DATABASE llbench_run TEMPLATE llbench_seed STRATEGY FILE_COPY"
}

echo "== seeding $n engagements into llbench_seed"
t0=$(now_ms)
adm "DROP DATABASE IF EXISTS llbench_run"
adm "DROP DATABASE IF EXISTS llbench_seed"
adm "CREATE DATABASE llbench_seed TEMPLATE \"$template\""
psql -X -q -v ON_ERROR_STOP=1 -v n="$n" "$seed_url" -f "$here/seed.sql" >/dev/null
echo "seeded in $(( $(now_ms) - t0 )) ms"

echo "== floor: one INSERT ... SELECT"
fresh_run_db
t0=$(now_ms)
floor_out=$(psql -X -qtA -v ON_ERROR_STOP=1 "$run_url" -f "$here/floor.sql")
floor_ms=$(( $(now_ms) - t0 ))
floor_inv=${floor_out%%|*}
echo "floor: $floor_out (invoices|lines|audit|entries|outbox) in $floor_ms ms = $(rate "$floor_inv" "$floor_ms") invoices/s"

# run_workers K: K worker processes on one tick.
run_workers() {
  local k=$1 prefix="llbench$$-$1." pids=() i
  fresh_run_db
  local group="${prefix}billing-invoicing-worker"
  # A tick scoped to a firm that does not exist creates the topic (the dev
  # broker creates topics on produce) and nothing else, so the workers
  # subscribe to an existing topic.
  KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_url LOG_LEVEL=warn \
    "$ctl" invoices generate --date "$date" --firm-id 999999999 >/dev/null
  for i in $(seq 1 "$k"); do
    KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_url LOG_LEVEL=${BENCH_LOG_LEVEL:-info} \
      "$worker" >"$logdir/w$k-$i.log" 2>&1 &
    pids+=($!)
  done
  # Wait until the dummy tick's 12 shards are done and every worker holds
  # partitions (bounded).
  local deadline=$(( $(date +%s) + 120 ))
  until [ "$(q "SELECT count(*) FROM billing.processed_messages WHERE consumer = '$group'")" -ge 12 ] &&
        [ "$(grep -l 'partitions assigned' "$logdir"/w"$k"-*.log | wc -l)" -ge "$k" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "workers did not get ready" >&2; kill "${pids[@]}"; exit 1; }
    sleep 0.2
  done
  sleep 2 # let the group settle after the last rebalance
  t0=$(now_ms)
  KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_url LOG_LEVEL=warn "$ctl" invoices generate --date "$date" >/dev/null
  deadline=$(( $(date +%s) + 3600 ))
  until [ "$(q "SELECT count(*) FROM billing.processed_messages WHERE consumer = '$group'")" -ge 24 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "tick not done within an hour" >&2; kill "${pids[@]}"; exit 1; }
    sleep 0.1
  done
  local inv_ms=$(( $(now_ms) - t0 ))
  until [ "$(q "SELECT count(*) FROM billing.outbox WHERE published_at IS NULL")" -eq 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "outbox not relayed within an hour" >&2; kill "${pids[@]}"; exit 1; }
    sleep 0.1
  done
  local relay_ms=$(( $(now_ms) - t0 ))
  kill -TERM "${pids[@]}"
  wait "${pids[@]}" || true
  local inv
  inv=$(q "SELECT count(*) FROM billing.invoices")
  echo "$k worker(s): $inv invoices committed in $inv_ms ms = $(rate "$inv" "$inv_ms") invoices/s;" \
       "outbox relayed after $relay_ms ms; $(( inv_ms * 100 / (floor_ms > 0 ? floor_ms : 1) ))% of the floor's time"
  [ "$inv" -eq "$floor_inv" ] || echo "WARNING: the workers created $inv invoices, the floor $floor_inv" >&2
}

if [ "${BARE:-1}" != 0 ]; then
  echo "== bare floor: floor.sql on copies of the tables with only primary keys"
  fresh_run_db
  psql -X -q -v ON_ERROR_STOP=1 "$run_url" -f "$here/bare_setup.sql" >/dev/null
  t0=$(now_ms)
  bare_out=$(sed -E 's/billing\.(invoices|invoice_line_items|audit_events|outbox|time_entries)\b/bare.\1/g' \
               "$here/floor.sql" | psql -X -qtA -v ON_ERROR_STOP=1 "$run_url")
  bare_ms=$(( $(now_ms) - t0 ))
  echo "bare floor: $bare_out (invoices|lines|audit|entries|outbox) in $bare_ms ms =" \
       "$(rate "${bare_out%%|*}" "$bare_ms") invoices/s; $(( bare_ms * 100 / (floor_ms > 0 ? floor_ms : 1) ))% of the floor's time"
fi

for k in ${WORKERS:-1 2}; do
  [ "$k" -gt 0 ] || continue
  echo "== $k worker(s)"
  run_workers "$k"
done
adm "DROP DATABASE IF EXISTS llbench_run"
echo "worker logs in $logdir"
