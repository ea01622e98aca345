#!/usr/bin/env bash
# stack-up.sh: starts the local stack's services: a private PostgreSQL
# cluster (migrated) and Kafka: billing-dev-broker by default, or with
# --kafka real a 3-node Apache Kafka cluster (deploy/local/kafka/kafka-up.sh,
# state in DIR/kafka, client ports --kafka-port-base, default 19092..19094;
# plaintext, or SASL/SCRAM with ACLs and one principal per process with
# --kafka-sasl). Writes DIR/env with
# DATABASE_URL and KAFKA_BROKERS for `source`-ing, and remembers every PID
# so stack-down.sh stops exactly what was started.
#
# Database roles, as in production (docs/OPERATIONS.md "Database roles"):
# DIR/env's DATABASE_URL is billing_operator's (what billingctl in that
# shell uses), WORKER_DATABASE_URL billing_worker's (what every long-running
# process started here uses, and what tests give the workers they start),
# OWNER_DATABASE_URL the cluster's superuser (migrations, seeding, the
# tests' own fixtures).
#
# With --services it also starts every long-running process of the system
# against them, one instance each, with logs in DIR/<name>.log:
#   billing-ingester          INGESTER_LISTEN    127.0.0.1:BASE
#   billing-scheduler         WORKER_HTTP_LISTEN 127.0.0.1:BASE+1
#   billing-invoicing-worker  WORKER_HTTP_LISTEN 127.0.0.1:BASE+2
#   billing-autopay-worker    WORKER_HTTP_LISTEN 127.0.0.1:BASE+3
#   billing-retry-worker      WORKER_HTTP_LISTEN 127.0.0.1:BASE+4
#   billing-dispute-worker    WORKER_HTTP_LISTEN 127.0.0.1:BASE+5
#   billing-notifier          WORKER_HTTP_LISTEN 127.0.0.1:BASE+6
#   smtp-sink                 127.0.0.1:BASE+8 (the test SMTP server the
#                             notifier mails to; messages in DIR/mail/*.eml)
#   stripe-standin            127.0.0.1:BASE+9 (when built; STRIPE_API_BASE
#                             of the workers that call Stripe)
# BASE is --port-base (default 8080). A process that is not built yet is
# skipped with a warning. DIR/endpoints lists "name url" of every HTTP
# endpoint started (ingester webhook URL, each /metrics).
#
#   stack-up.sh [--dir DIR] [--build BUILD_DIR] [--db NAME]... [--partitions N]
#               [--services [--port-base N]] [--kafka dev|real [--kafka-port-base N]
#               [--kafka-sasl]]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir="$root/.stack/local"
build="$root/build/release"
partitions=12
services=0
port_base=8080
kafka=dev
kafka_port_base=19092
kafka_sasl=0
dbs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --db) dbs+=("$2"); shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --services) services=1; shift ;;
    --port-base) port_base=$2; shift 2 ;;
    --kafka) kafka=$2; shift 2 ;;
    --kafka-port-base) kafka_port_base=$2; shift 2 ;;
    --kafka-sasl) kafka_sasl=1; shift ;;
    *) echo "usage: stack-up.sh [--dir DIR] [--build BUILD_DIR] [--db NAME]... [--partitions N] [--services [--port-base N]] [--kafka dev|real [--kafka-port-base N] [--kafka-sasl]]" >&2; exit 2 ;;
  esac
done
case "$port_base" in
  ''|*[!0-9]*) echo "stack-up.sh: --port-base must be a number" >&2; exit 2 ;;
esac
[ "$port_base" -ge 1024 ] && [ "$port_base" -le 65000 ] ||
  { echo "stack-up.sh: --port-base must be between 1024 and 65000" >&2; exit 2; }
case "$kafka" in dev|real) ;; *) echo "stack-up.sh: --kafka must be dev or real" >&2; exit 2 ;; esac
[ "$kafka_sasl" -eq 0 ] || [ "$kafka" = real ] || { echo "stack-up.sh: --kafka-sasl needs --kafka real" >&2; exit 2; }
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
unset OWNER_DATABASE_URL WORKER_DATABASE_URL OPERATOR_DATABASE_URL
# shellcheck disable=SC1091
. "$dir/pg/env"

# Kafka: a real cluster when asked (kafka-up.sh waits until it serves and
# has the topics), else the dev broker, which writes its address once it is
# serving.
if [ "$kafka" = real ]; then
  kargs=(--dir "$dir/kafka" --build "$build" --port-base "$kafka_port_base")
  [ "$kafka_sasl" -eq 0 ] || kargs+=(--sasl)
  "$here/kafka/kafka-up.sh" "${kargs[@]}"
  cp "$dir/kafka/bootstrap" "$dir/bootstrap"
elif [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
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

owner_url=${OWNER_DATABASE_URL:-$DATABASE_URL}
worker_url=${WORKER_DATABASE_URL:-$DATABASE_URL}
operator_url=${OPERATOR_DATABASE_URL:-$DATABASE_URL}
cat >"$dir/env" <<ENV
DATABASE_URL=$operator_url
OPERATOR_DATABASE_URL=$operator_url
WORKER_DATABASE_URL=$worker_url
OWNER_DATABASE_URL=$owner_url
KAFKA_BROKERS=$brokers
PGPORT=$PGPORT
ENV
# On a SASL cluster every process gets its own principal (DIR/kafka/
# credentials); the env file, for an operator's shell and the tests, holds
# the administrator's.
kafka_creds() { # user -> VAR=VALUE words for env(1), nothing without SASL
  [ "$kafka_sasl" -eq 1 ] || return 0
  local pw
  pw=$(awk -v u="$1" '$1 == u { print $2 }' "$dir/kafka/credentials")
  echo "KAFKA_SECURITY_PROTOCOL=sasl_plaintext KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_SASL_USERNAME=$1 KAFKA_SASL_PASSWORD=$pw"
}
if [ "$kafka_sasl" -eq 1 ]; then
  grep '^KAFKA_S' "$dir/kafka/env" >>"$dir/env"
fi
chmod 600 "$dir/env"
# Long-running processes of the system, when asked. Each gets the stack's
# worker URL as DATABASE_URL, KAFKA_BROKERS, plus its own extra VAR=VALUE
# settings; the ingester gets no database URL at all.
start_service() { # name binary [VAR=VALUE...]
  local name=$1 bin=$2
  shift 2
  if [ ! -x "$bin" ]; then
    echo "stack-up.sh: warning: $name is not built yet ($bin): starting without it" >&2
    return 0
  fi
  if [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
    return 0
  fi
  local db=(DATABASE_URL="$worker_url")
  [ "$name" = billing-ingester ] && db=(-u DATABASE_URL)
  env "${db[@]}" KAFKA_BROKERS="$brokers" "$@" nohup "$bin" \
    >>"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}
if [ "$services" -eq 1 ]; then
  export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_LocalDevOnly0123456789ab}
  export INGESTER_LISTEN=${INGESTER_LISTEN:-127.0.0.1:$port_base}
  export STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY:-sk_test_LocalDevOnly0123456789ab}
  : >"$dir/endpoints"
  # Stripe: the loopback stand-in when it is built. Without it Stripe calls
  # go to a closed local port (transient failures, retried): never to Stripe.
  standin=""
  for c in "$build/tests/standin/stripe-standin" "$build/tests/support/stripe_standin/stripe-standin"; do
    [ -x "$c" ] && { standin=$c; break; }
  done
  if [ -z "${STRIPE_API_BASE:-}" ] && [ -n "$standin" ]; then
    if ! { [ -f "$dir/stripe-standin.pid" ] && kill -0 "$(cat "$dir/stripe-standin.pid")" 2>/dev/null; }; then
      rm -f "$dir/stripe-standin.addr"
      nohup "$standin" --listen "127.0.0.1:$((port_base + 9))" --addr-file "$dir/stripe-standin.addr" \
        --api-key "$STRIPE_SECRET_KEY" >"$dir/stripe-standin.out" 2>>"$dir/stripe-standin.log" </dev/null &
      echo $! >"$dir/stripe-standin.pid"
      for _ in $(seq 1 50); do
        [ -s "$dir/stripe-standin.addr" ] && break
        kill -0 "$(cat "$dir/stripe-standin.pid")" 2>/dev/null || break
        sleep 0.1
      done
    fi
    if [ -s "$dir/stripe-standin.addr" ]; then
      STRIPE_API_BASE=$(head -n 1 "$dir/stripe-standin.addr")
    else
      echo "stack-up.sh: warning: stripe-standin did not start (see $dir/stripe-standin.log)" >&2
    fi
  elif [ -z "${STRIPE_API_BASE:-}" ]; then
    echo "stack-up.sh: warning: stripe-standin is not built yet: Stripe calls will fail (transient) until it is" >&2
  fi
  export STRIPE_API_BASE=${STRIPE_API_BASE:-http://127.0.0.1:9}
  [ -n "$standin" ] && [ "$STRIPE_API_BASE" != "http://127.0.0.1:9" ] &&
    echo "stripe-standin $STRIPE_API_BASE" >>"$dir/endpoints"

  # shellcheck disable=SC2046
  start_service billing-ingester "$build/workers/ingester/billing-ingester" $(kafka_creds ingester)
  [ -f "$dir/billing-ingester.pid" ] &&
    echo "billing-ingester http://$INGESTER_LISTEN/metrics" >>"$dir/endpoints"
  n=1
  for w in scheduler invoicing-worker autopay-worker retry-worker dispute-worker; do
    name=billing-$w
    listen=127.0.0.1:$((port_base + n))
    n=$((n + 1))
    # workers/<folder>/<binary>: found by name, whatever the folder is called.
    bin=$(find "$build/workers" -mindepth 2 -maxdepth 2 -type f -name "$name" 2>/dev/null | head -n 1)
    # shellcheck disable=SC2046
    start_service "$name" "${bin:-$build/workers/${w%-worker}/$name}" WORKER_HTTP_LISTEN="$listen" \
      $(kafka_creds "${w%-worker}")
    [ -f "$dir/$name.pid" ] && echo "$name http://$listen/metrics" >>"$dir/endpoints"
  done
  # E-mail: the test SMTP server (tests/support/smtp_sink.c), then the
  # notifier mailing to it. Every message is kept as DIR/mail/NNNNNN.eml.
  sink="$build/tests/notifier/smtp-sink"
  smtp_url=""
  if [ -x "$sink" ]; then
    mkdir -p "$dir/mail"
    if ! { [ -f "$dir/smtp-sink.pid" ] && kill -0 "$(cat "$dir/smtp-sink.pid")" 2>/dev/null; }; then
      rm -f "$dir/smtp-sink.addr"
      nohup "$sink" --listen "127.0.0.1:$((port_base + 8))" --dir "$dir/mail" \
        --addr-file "$dir/smtp-sink.addr" >"$dir/smtp-sink.out" 2>>"$dir/smtp-sink.log" </dev/null &
      echo $! >"$dir/smtp-sink.pid"
      for _ in $(seq 1 50); do
        [ -s "$dir/smtp-sink.addr" ] && break
        kill -0 "$(cat "$dir/smtp-sink.pid")" 2>/dev/null || break
        sleep 0.1
      done
    fi
    [ -s "$dir/smtp-sink.addr" ] && smtp_url="smtp://$(head -n 1 "$dir/smtp-sink.addr")"
  fi
  if [ -n "$smtp_url" ]; then
    listen=127.0.0.1:$((port_base + 6))
    # shellcheck disable=SC2046
    start_service billing-notifier "$build/workers/notifier/billing-notifier" \
      WORKER_HTTP_LISTEN="$listen" SMTP_URL="$smtp_url" SMTP_FROM=billing@ledgerline.local \
      $(kafka_creds notifier)
    [ -f "$dir/billing-notifier.pid" ] && echo "billing-notifier http://$listen/metrics" >>"$dir/endpoints"
  else
    echo "stack-up.sh: warning: smtp-sink is not built or did not start: starting without billing-notifier" >&2
  fi
  {
    echo "STRIPE_WEBHOOK_SECRET=$STRIPE_WEBHOOK_SECRET"
    echo "INGESTER_LISTEN=$INGESTER_LISTEN"
    echo "STRIPE_SECRET_KEY=$STRIPE_SECRET_KEY"
    echo "STRIPE_API_BASE=$STRIPE_API_BASE"
  } >>"$dir/env"
fi
# The URL without its password (the env file has it).
shown=$(sed -E 's#://([^:@/]+):[^@/]*@#://\1:***@#' <<<"$operator_url")
echo "stack up: DATABASE_URL=$shown KAFKA_BROKERS=$brokers ($kafka Kafka; env in $dir/env)"
