#!/usr/bin/env bash
# stack-up.sh: starts the local stack's services: a private PostgreSQL
# cluster (migrated) and billing-dev-broker. Writes DIR/env with
# DATABASE_URL and KAFKA_BROKERS for `source`-ing, and remembers every PID
# so stack-down.sh stops exactly what was started.
#
# With --services it also starts every built long-running process of the
# system (ingester, scheduler, workers) against them, one instance each, with
# logs in DIR/<name>.log.
#
#   stack-up.sh [--dir DIR] [--build BUILD_DIR] [--db NAME]... [--partitions N] [--services]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir="$root/.stack/local"
build="$root/build/release"
partitions=12
services=0
dbs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --db) dbs+=("$2"); shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --services) services=1; shift ;;
    *) echo "usage: stack-up.sh [--dir DIR] [--build BUILD_DIR] [--db NAME]... [--partitions N] [--services]" >&2; exit 2 ;;
  esac
done
[ "${#dbs[@]}" -gt 0 ] || dbs=(ledgerline)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
billingctl="$build/workers/billingctl/billingctl"
broker="$build/deploy/local/billing-dev-broker"
for b in "$billingctl" "$broker"; do
  [ -x "$b" ] || { echo "stack-up.sh: $b not built (cmake --build $build)" >&2; exit 1; }
done

# PostgreSQL: own data directory, loopback only, migrated by billingctl.
dbargs=()
for d in "${dbs[@]}"; do dbargs+=(--db "$d"); done
BILLINGCTL="$billingctl" "$here/pg-start.sh" --dir "$dir/pg" "${dbargs[@]}" >/dev/null
# shellcheck disable=SC1091
. "$dir/pg/env"

# Kafka: the dev broker, which writes its address once it is serving.
if [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
  :
else
  rm -f "$dir/bootstrap"
  nohup "$broker" --partitions "$partitions" --bootstrap-file "$dir/bootstrap" \
    >"$dir/broker.out" 2>"$dir/broker.log" </dev/null &
  echo $! >"$dir/broker.pid"
  for _ in $(seq 1 100); do
    [ -s "$dir/bootstrap" ] && break
    kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null || { cat "$dir/broker.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$dir/bootstrap" ] || { echo "stack-up.sh: dev broker did not start" >&2; exit 1; }
fi
brokers=$(head -n 1 "$dir/bootstrap")

cat >"$dir/env" <<ENV
DATABASE_URL=$DATABASE_URL
KAFKA_BROKERS=$brokers
PGPORT=$PGPORT
ENV
# Long-running processes of the system, when asked and built.
start_service() { # name binary
  local name=$1 bin=$2
  [ -x "$bin" ] || return 0
  if [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
    return 0
  fi
  DATABASE_URL=$DATABASE_URL KAFKA_BROKERS=$brokers nohup "$bin" \
    >>"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}
if [ "$services" -eq 1 ]; then
  export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_local_dev}
  export INGESTER_LISTEN=${INGESTER_LISTEN:-127.0.0.1:8080}
  start_service billing-ingester "$build/workers/ingester/billing-ingester"
  start_service billing-scheduler "$build/workers/scheduler/billing-scheduler"
  for w in "$build"/workers/*/billing-*-worker; do
    [ -e "$w" ] && start_service "$(basename "$w")" "$w"
  done
  {
    echo "STRIPE_WEBHOOK_SECRET=$STRIPE_WEBHOOK_SECRET"
    echo "INGESTER_LISTEN=$INGESTER_LISTEN"
  } >>"$dir/env"
fi
echo "stack up: DATABASE_URL=$DATABASE_URL KAFKA_BROKERS=$brokers (env in $dir/env)"
