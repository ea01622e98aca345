#!/usr/bin/env bash
# run-stack.sh: the README's local-stack command. Installs what is missing,
# builds build/release, starts PostgreSQL (migrated), the dev broker and
# every process of the system (ingester, scheduler, every worker that is
# built, the Stripe stand-in when built), seeds the demo firm and prints how
# to post a signed webhook, publish a tick and read the metrics. Returns once
# everything is started; stop it with deploy/local/stack-down.sh.
#
#   run-stack.sh [--dir DIR] [--build BUILD_DIR] [--port-base N] [--kafka dev|real [--kafka-sasl]]
#
# --kafka real runs the stack on a 3-node Apache Kafka cluster (KRaft,
# replication factor 3, min.insync.replicas 2; the broker is fetched through
# Maven on first use: needs java 17+ and mvn) instead of the dev broker;
# --kafka-sasl adds SASL/SCRAM, ACLs and a principal per process.
#
# Defaults: DIR .stack/local, BASE 8080 (ingester on BASE, the others on
# BASE+1.. as stack-up.sh lists). With --build the given, already built
# tree is used as it is (nothing is configured or built: tests pass their
# own build); stop that stack with stack-down.sh --dir DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
dir="$root/.stack/local"
build=""
port_base=8080
kafka_args=()
usage() { echo "usage: run-stack.sh [--dir DIR] [--build BUILD_DIR] [--port-base N] [--kafka dev|real [--kafka-sasl]]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --port-base) [ $# -ge 2 ] || usage; port_base=$2; shift 2 ;;
    --kafka) [ $# -ge 2 ] || usage; kafka_args+=(--kafka "$2"); shift 2 ;;
    --kafka-sasl) kafka_args+=(--kafka-sasl); shift ;;
    *) usage ;;
  esac
done

"$here/deps.sh"
if [ -z "$build" ]; then
  build=build/release
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# A stack that fails half-way is stopped again, so nothing is left running.
trap 'echo "run-stack.sh: failed; stopping what was started" >&2; "$here/stack-down.sh" --dir "$dir" >/dev/null 2>&1' ERR
"$here/stack-up.sh" --dir "$dir" --build "$build" --services --port-base "$port_base" \
  "${kafka_args[@]}" >/dev/null
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
# Seeding is the owner's (the processes and billingctl hold runtime roles).
psql "$OWNER_DATABASE_URL" -q -v ON_ERROR_STOP=1 -f "$here/demo.sql"

# Every process must still be running a moment after start (a bad setting
# exits at once with status 2 and one line naming it).
sleep 1
for f in "$dir"/*.pid; do
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || {
    name=$(basename "$f" .pid)
    echo "run-stack.sh: $name exited at start; its log ($dir/$name.log):" >&2
    tail -n 5 "$dir/$name.log" >&2 || true
    false
  }
done
trap - ERR

running=$(for f in "$dir"/*.pid; do basename "$f" .pid; done | grep -v '^broker$' | tr '\n' ' ')
if [ -d "$dir/kafka" ]; then
  kafka_kind="Apache Kafka, $(cat "$dir/kafka/nodes") KRaft nodes in $dir/kafka, topics billing.*"
else
  kafka_kind="billing-dev-broker, topics billing.*"
fi
missing=""
for b in billing-ingester billing-scheduler billing-invoicing-worker billing-autopay-worker \
         billing-retry-worker billing-dispute-worker billing-notifier; do
  [ -f "$dir/$b.pid" ] || missing="$missing $b"
done
fixtures="$root/../shared/fixtures/stripe"
ctl="$build/workers/billingctl/billingctl"
cat <<MSG
ledgerline local stack is running (state and logs in $dir).

  PostgreSQL   $(sed -E 's#://([^:@/]+):[^@/]*@#://\1:***@#' <<<"$DATABASE_URL")   (billing_operator; the processes run as billing_worker)
  Kafka        $KAFKA_BROKERS   ($kafka_kind)
  Stripe       $STRIPE_API_BASE
  Processes    $running
MSG
[ -z "$missing" ] || echo "  NOT BUILT    $missing   (warning: start them later with deploy/local/stack-up.sh --dir $dir --build $build --services --port-base $port_base)"
cat <<MSG

Use it (in this shell first: set -a; . $dir/env; set +a):

  # post a signed Stripe webhook to the ingester (answers {"received":true})
  f=$fixtures/payment_intent.succeeded.json
  curl -s -X POST http://\$INGESTER_LISTEN/webhooks/stripe \\
    -H "Stripe-Signature: \$($fixtures/sign.sh \$f \$STRIPE_WEBHOOK_SECRET)" \\
    -H 'Content-Type: application/json' --data-binary @\$f

  # publish an invoicing tick for a date (the invoicing worker creates the invoices)
  $ctl invoices generate --date 2026-11-01 --dry-run
  $ctl invoices generate --date 2026-11-01
  psql "\$DATABASE_URL" -c 'select id, invoice_number, status, total_cents from billing.invoices'

  # e-mails the clients received: billing-notifier mails every issued invoice
  # (PDF attached), credit note, receipt and failed payment through the test
  # SMTP server, which keeps each message as a file
  psql "\$DATABASE_URL" -c 'select id, kind, invoice_id, to_address, status, error from billing.notifications order by id'
  ls $dir/mail/                       # one NNNNNN.eml per message (MIME, PDF in base64)
  $ctl invoice pdf INVOICE_ID -o invoice.pdf   # the stored PDF of an invoice

  # metrics (Prometheus text), /healthz and /readyz on the same ports
MSG
grep -v '^stripe-standin ' "$dir/endpoints" | while read -r name url; do
  printf '  %-26s %s\n' "$name" "$url"
done
cat <<MSG

  Logs: $dir/<process>.log (one JSON object per line)

Stop it:
  deploy/local/stack-down.sh$([ "$dir" = "$root/.stack/local" ] || echo " --dir $dir")
MSG
