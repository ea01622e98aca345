#!/usr/bin/env bash
# run-stack.sh: the README's local-stack command. Installs what is missing,
# builds, starts PostgreSQL and the dev broker (migrated), seeds the demo
# firm and prints how to use the stack. Stop it with deploy/local/stack-down.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
dir="$root/.stack/local"

"$here/deps.sh"
cmake -S "$root" -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
"$here/stack-up.sh" --dir "$dir" --build build/release --services >/dev/null
# shellcheck disable=SC1091
. "$dir/env"
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -f "$here/demo.sql"

running=$(for f in "$dir"/*.pid; do basename "$f" .pid; done | tr '\n' ' ')
fixtures="$root/../shared/fixtures/stripe"
cat <<MSG
ledgerline local stack is running (state and logs in $dir).

  PostgreSQL   $DATABASE_URL
  Kafka        $KAFKA_BROKERS   (billing-dev-broker, topics billing.*)
  Processes    $running

Use it (in this shell first: set -a; . $dir/env; set +a):

  # invoice the demo firm as of a date (publishes an invoicing tick), then look
  build/release/workers/billingctl/billingctl invoices generate --date 2026-11-01 --dry-run
  build/release/workers/billingctl/billingctl invoices generate --date 2026-11-01
  psql "\$DATABASE_URL" -c 'select id, invoice_number, status, total_cents from billing.invoices'

  # post a signed Stripe webhook to the ingester (secret \$STRIPE_WEBHOOK_SECRET)
  f=$fixtures/payment_intent.succeeded.json
  curl -s -X POST http://\$INGESTER_LISTEN/webhooks/stripe \\
    -H "Stripe-Signature: \$($fixtures/sign.sh \$f \$STRIPE_WEBHOOK_SECRET)" \\
    -H 'Content-Type: application/json' --data-binary @\$f

  Logs: $dir/<process>.log (one JSON object per line)

Stop it:
  deploy/local/stack-down.sh
MSG
