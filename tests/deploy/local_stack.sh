#!/usr/bin/env bash
# local_stack.sh BUILD_DIR: the README's local stack, end to end.
#
# Starts the whole stack with deploy/local/run-stack.sh (as the README says,
# but on this build, in a directory and on ports of its own so it runs beside
# other tests), posts one signed Stripe fixture to the ingester, publishes
# one invoicing tick with billingctl, reads the invoice it created and the
# worker's metrics, then stops the stack with stack-down.sh and checks that
# every process stopped cleanly (its "stopped" log line) and none is left.
# Whatever happens, everything it started is stopped and its directory
# removed.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: local_stack.sh BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
fixtures=$(cd "$root/../shared/fixtures/stripe" && pwd)
ctl="$build/workers/billingctl/billingctl"

dir=$(mktemp -d /tmp/ledgerline-deploy-test-XXXXXX)
chmod 755 "$dir"
cleanup() {
  "$root/deploy/local/stack-down.sh" --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$dir"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 8 "$f" >&2; }; done; exit 1; }

# Ten free consecutive loopback ports (BASE..BASE+9).
port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
base=""
for _ in $(seq 1 50); do
  b=$((20000 + (RANDOM % 900) * 10))
  ok=1
  for i in $(seq 0 9); do port_free $((b + i)) || { ok=0; break; }; done
  [ "$ok" -eq 1 ] && { base=$b; break; }
done
[ -n "$base" ] || fail "no free block of ports"

# Only the stack's own settings: nothing inherited from the caller's stack.
unset DATABASE_URL KAFKA_BROKERS INGESTER_LISTEN STRIPE_WEBHOOK_SECRET STRIPE_API_BASE \
      STRIPE_SECRET_KEY WORKER_HTTP_LISTEN PGPORT OWNER_DATABASE_URL WORKER_DATABASE_URL \
      OPERATOR_DATABASE_URL
export LOG_LEVEL=info
# The scheduler's test clock: a first start at 00:00 publishes nothing (the
# earliest tick is due at 02:00), so the only invoicing tick is this test's.
# Without it today's tick could create the same period's invoice first.
export SCHEDULER_NOW=2026-10-15T00:00:00Z

echo "== run-stack.sh (ports $base..$((base + 9)), dir $dir)"
"$root/deploy/local/run-stack.sh" --dir "$dir" --build "$build" --port-base "$base" \
  >"$dir/run-stack.out" 2>"$dir/run-stack.err" || { cat "$dir/run-stack.err" >&2; fail "run-stack.sh failed"; }
grep -q 'webhooks/stripe' "$dir/run-stack.out" || fail "run-stack.sh did not print how to post a webhook"
grep -q 'invoices generate' "$dir/run-stack.out" || fail "run-stack.sh did not print how to publish a tick"
grep -q "http://127.0.0.1:$((base + 2))/metrics" "$dir/run-stack.out" || fail "run-stack.sh did not print the metrics URLs"
cat "$dir/run-stack.err" >&2 # warnings about processes not built yet
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
[ "$INGESTER_LISTEN" = "127.0.0.1:$base" ] || fail "INGESTER_LISTEN is $INGESTER_LISTEN"

pids=()
for f in "$dir"/*.pid; do pids+=("$(cat "$f")"); done
for name in billing-ingester billing-scheduler billing-invoicing-worker broker; do
  [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" || fail "$name is not running"
done

# Wait (bounded) until the invoicing worker reports ready: database and broker reachable.
metrics="http://127.0.0.1:$((base + 2))"
for _ in $(seq 1 60); do
  "$ctl" health check "$metrics/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
"$ctl" health check "$metrics/readyz" || fail "invoicing worker not ready"
if "$ctl" health check "http://127.0.0.1:$((base + 8))/readyz" >/dev/null 2>&1; then
  fail "billingctl health check succeeded on a closed port"
fi

echo "== post a signed fixture"
f="$fixtures/payment_intent.succeeded.json"
answer=$(curl -s -o "$dir/webhook.body" -w '%{http_code}' -X POST "http://$INGESTER_LISTEN/webhooks/stripe" \
  -H "Stripe-Signature: $("$fixtures/sign.sh" "$f" "$STRIPE_WEBHOOK_SECRET")" \
  -H 'Content-Type: application/json' --data-binary @"$f")
[ "$answer" = 200 ] || fail "webhook answered $answer: $(cat "$dir/webhook.body")"
[ "$(cat "$dir/webhook.body")" = '{"received":true}' ] || fail "webhook body $(cat "$dir/webhook.body")"
curl -s "http://$INGESTER_LISTEN/metrics" | grep -q '^ingester_events_published_total{type="payment_intent.succeeded"} 1$' ||
  fail "ingester metrics do not count the published event"

echo "== invoicing tick for 2026-11-01"
"$ctl" invoices generate --date 2026-11-01 >"$dir/generate.out" || fail "billingctl invoices generate failed"
# Wait (bounded) until the worker's group applied every shard of the tick.
keysq="select count(*) from billing.processed_messages
   where consumer = 'billing.billing-invoicing-worker' and idempotency_key like 'tick:invoicing:2026-11-01:all:%'"
keys=0
for _ in $(seq 1 120); do
  keys=$(psql "$DATABASE_URL" -XAtq -c "$keysq")
  [ "$keys" -ge 12 ] && break
  sleep 0.5
done
[ "$keys" = 12 ] || fail "expected 12 applied tick shards, found $keys"
n=$(psql "$DATABASE_URL" -XAtq -c "select count(*) from billing.invoices i join billing.firms f on f.id = i.firm_id
   join billing.clients c on c.id = i.client_id
   where f.slug = 'demo' and c.company_name = 'Acme Manufacturing' and i.issue_date = '2026-11-01'")
[ "$n" -eq 1 ] || fail "expected one Acme invoice issued 2026-11-01, found $n"
# Package fee 5,000.00 plus 8.25% tax (demo.sql).
total=$(psql "$DATABASE_URL" -XAtq -c "select i.total_cents from billing.invoices i
   join billing.clients c on c.id = i.client_id
   where c.company_name = 'Acme Manufacturing' and i.issue_date = '2026-11-01'")
[ "$total" = 541250 ] || fail "Acme invoice total $total, expected 541250"
echo "invoice read: Acme, issued 2026-11-01, total_cents $total"
# The runtime roles, as in production: the worker wrote as billing_worker,
# billingctl holds billing_operator, the ingester has no database URL.
who=$(psql "$DATABASE_URL" -XAtq -c "select a.db_user from billing.audit_events a
   join billing.invoices i on i.id = (a.metadata->>'invoice_id')::bigint
   join billing.clients c on c.id = i.client_id
   where c.company_name = 'Acme Manufacturing' and i.issue_date = '2026-11-01'
     and a.action = 'package_invoice_auto_generated'")
[ "$who" = billing_worker ] || fail "the invoicing worker wrote as '$who', expected billing_worker"
[ "$(psql "$DATABASE_URL" -XAtq -c 'select session_user')" = billing_operator ] ||
  fail "DATABASE_URL of the stack's env is not billing_operator's"
if tr '\0' '\n' <"/proc/$(cat "$dir/billing-ingester.pid")/environ" | grep -q '^DATABASE_URL='; then
  fail "the ingester was given DATABASE_URL"
fi

echo "== compose's database roles (deploy/postgres/roles.sh, then migrate as billing_owner)"
# On a scratch database of this stack's own cluster, as docker-compose.yml
# runs them: db-roles as the superuser, migrate as billing_owner.
scratch=ll_compose_roles
owner=$OWNER_DATABASE_URL
psql "$owner" -XAtq -c "create database $scratch" >/dev/null || fail "create database $scratch"
pw() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
if PGHOST=127.0.0.1 PGPORT=$PGPORT PGUSER=postgres PGDATABASE=$scratch BILLING_OWNER_PASSWORD=short \
   BILLING_WORKER_PASSWORD=$(pw) BILLING_OPERATOR_PASSWORD=$(pw) \
   sh "$root/deploy/postgres/roles.sh" >"$dir/roles.out" 2>&1; then
  fail "roles.sh accepted a short password"
fi
grep -q 'BILLING_OWNER_PASSWORD must be at least 16' "$dir/roles.out" || fail "roles.sh: $(cat "$dir/roles.out")"
owner_pw=$(pw)
PGHOST=127.0.0.1 PGPORT=$PGPORT PGUSER=postgres PGDATABASE=$scratch BILLING_OWNER_PASSWORD=$owner_pw \
  BILLING_WORKER_PASSWORD=$(pw) BILLING_OPERATOR_PASSWORD=$(pw) \
  sh "$root/deploy/postgres/roles.sh" >"$dir/roles.out" 2>&1 || fail "roles.sh: $(cat "$dir/roles.out")"
DATABASE_URL="postgresql://billing_owner:$owner_pw@127.0.0.1:$PGPORT/$scratch" "$ctl" db migrate \
  >"$dir/migrate-owner.out" 2>&1 || fail "migrate as billing_owner: $(tail -n 3 "$dir/migrate-owner.out")"
others=$(psql "${owner%/*}/$scratch" -XAtq -c "select count(*) from pg_class
   where relnamespace = 'billing'::regnamespace and relowner <> 'billing_owner'::regrole")
[ "$others" = 0 ] || fail "$others objects of $scratch are not billing_owner's"
psql "$owner" -XAtq -c "drop database $scratch with (force)" >/dev/null

echo "== metrics"
curl -s "$metrics/metrics" >"$dir/metrics.txt"
grep -Eq '^billing_invoices_generated_total [1-9][0-9]*$' "$dir/metrics.txt" ||
  fail "billing_invoices_generated_total missing: $(grep billing_invoices "$dir/metrics.txt")"
grep -Eq '^billing_messages_total\{topic="billing\.ticks\.invoicing",outcome="ok"\} [1-9][0-9]*$' "$dir/metrics.txt" ||
  fail "billing_messages_total for ticks.invoicing missing"
grep "^billing_invoices_generated_total" "$dir/metrics.txt"
curl -s "http://127.0.0.1:$((base + 1))/metrics" | grep -q '^# TYPE billing_ticks_published_total counter$' ||
  fail "scheduler metrics missing"

echo "== stop"
"$root/deploy/local/stack-down.sh" --dir "$dir" || fail "stack-down.sh failed"
for p in "${pids[@]}"; do
  ! kill -0 "$p" 2>/dev/null || fail "process $p still running after stack-down.sh"
done
if pgrep -f "$dir" >/dev/null; then fail "processes of $dir left: $(pgrep -af "$dir")"; fi
ls "$dir"/*.pid >/dev/null 2>&1 && fail "pid files left"
# Clean stops (SIGTERM handled, not killed): each said so last.
grep -q '"msg":"ingester stopped"' "$dir/billing-ingester.log" || fail "ingester did not stop cleanly"
grep -q '"msg":"scheduler stopped"' "$dir/billing-scheduler.log" || fail "scheduler did not stop cleanly"
grep -q '"msg":"worker stopped"' "$dir/billing-invoicing-worker.log" || fail "invoicing worker did not stop cleanly"
# Sanitizer builds: no process reported a leak or undefined behaviour.
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$dir"/*.log 2>/dev/null; then
  fail "a sanitizer reported an error (logs above)"
fi
echo "local stack: 1 passed, 0 failed"
