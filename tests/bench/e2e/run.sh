#!/usr/bin/env bash
# run.sh: webhook -> books latency (issue 20 item 1). Not run by ctest;
# prints figures and never asserts a time.
#
#   tests/bench/e2e/run.sh [--kafka dev|real] [BUILD_DIR]   (default build/release)
#
# Settings (environment): RATE webhooks/s (1000), DURATION s (60),
# INFLIGHT most requests in flight (64), BENCH_LOG_LEVEL of the processes
# (info), STACK_DIR (default <checkout>/.stack/bench-e2e-<pid>), FIXTURE
# (Stripe's payment_intent.succeeded, default the shared fixtures').
#
# Starts everything it uses and stops it on exit, by PID: its own local
# stack (deploy/local/stack-up.sh: PostgreSQL + the dev broker, or with
# --kafka real the 3-node Apache Kafka cluster), with track_commit_timestamp
# turned on (ALTER SYSTEM + restart of the stack's own server), one
# billing-ingester and one billing-autopay-worker (which applies
# payment_intent.succeeded). Seeds RATE*DURATION (+20 warm-up) invoices with
# our own processing attempts (seed.sql), warms the path up with 20 webhooks,
# then bench-e2e-post posts one signed payment_intent.succeeded per invoice
# (the fixture's shape, metadata attempt_key / invoice_id / firm_id) at
# RATE/s. For each invoice: latency = commit time of the transaction that
# wrote its payments row (pg_xact_commit_timestamp(xmin), the server's
# clock) - the wall-clock time the POST started (the client's clock, same
# host). Prints p50/p95/p99/max of that, of the POST's own answer time, and
# the achieved rate.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
kafka=dev
if [ "${1:-}" = --kafka ]; then kafka=$2; shift 2; fi
case "$kafka" in dev|real) ;; *) echo "run.sh: --kafka must be dev or real" >&2; exit 2 ;; esac
build=$(cd "${1:-$root/build/release}" && pwd)
rate=${RATE:-1000}
duration=${DURATION:-60}
inflight=${INFLIGHT:-64}
loglevel=${BENCH_LOG_LEVEL:-info}
warm=20
n=$(( rate * duration ))
ingester="$build/workers/ingester/billing-ingester"
worker="$build/workers/autopay/billing-autopay-worker"
post="$build/tests/bench/e2e/bench-e2e-post"
fixture=${FIXTURE:-$root/../shared/fixtures/stripe/payment_intent.succeeded.json}
for b in "$ingester" "$worker" "$post"; do
  [ -x "$b" ] || { echo "run.sh: $b not built (cmake --build $build)" >&2; exit 1; }
done
[ -f "$fixture" ] || { echo "run.sh: no payment_intent.succeeded fixture (set FIXTURE)" >&2; exit 1; }

stack=${STACK_DIR:-$root/.stack/bench-e2e-$$}
work="$stack/run"
mkdir -p "$work"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$root/deploy/local/stack-down.sh" --dir "$stack" >/dev/null 2>&1 || true
}
trap cleanup EXIT
q() { psql -X -qtA -v ON_ERROR_STOP=1 "$OWNER_DATABASE_URL" -c "$1"; }

echo "== stack in $stack (kafka $kafka)"
"$root/deploy/local/stack-up.sh" --dir "$stack" --build "$build" --db llbench_e2e --kafka "$kafka" \
  >"$work/stack-up.log" 2>&1 || { cat "$work/stack-up.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$stack/env"
set +a
export PGOPTIONS="-c client_min_messages=warning"

# Commit timestamps: the stack's own server, restarted with its own options.
sdir=$(cat "$stack/pg/serverdir")
data="$sdir/data"
pgbin=$(dirname "$(head -n 1 "$data/postmaster.opts" | awk '{print $1}')")
q "ALTER SYSTEM SET track_commit_timestamp = on" >/dev/null
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u "$(stat -c %U "$data")" --)
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" restart -w -m fast -l "$sdir/postgres.log" >/dev/null
[ "$(q "SHOW track_commit_timestamp")" = on ] || { echo "run.sh: track_commit_timestamp is off" >&2; exit 1; }

echo "== seeding $n + $warm invoices with processing attempts"
t0=$(date +%s%N)
firm=$(psql -X -qtA -v ON_ERROR_STOP=1 -v n="$(( n + warm ))" -v day=2026-11-24 "$OWNER_DATABASE_URL" \
  -f "$here/seed.sql" | tail -n 1)
echo "firm $firm seeded in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
psql -X -qtA -v ON_ERROR_STOP=1 "$OWNER_DATABASE_URL" -c "\\copy (SELECT a.invoice_id, a.firm_id,
  a.idempotency_key, a.stripe_payment_intent_id, a.amount_cents FROM billing.payment_attempts a
  JOIN billing.invoices i ON i.id = a.invoice_id WHERE i.firm_id = $firm ORDER BY a.invoice_id)
  TO '$work/all.events' WITH (DELIMITER ' ')"
head -n "$warm" "$work/all.events" >"$work/warm.events"
tail -n +"$(( warm + 1 ))" "$work/all.events" >"$work/bench.events"

port=$(( 20000 + $$ % 20000 ))
export STRIPE_WEBHOOK_SECRET=whsec_LlbenchE2e0123456789abcdef
export KAFKA_TOPIC_PREFIX="llbench$$."
# On the real cluster the topics get the contract's partition counts (12
# for stripe.payments), as deploy/kafka/create-topics.sh makes them in
# production: a second kafka-up.sh on the stack's cluster creates them.
if [ "$kafka" = real ]; then
  "$root/deploy/local/kafka/kafka-up.sh" --dir "$stack/kafka" --build "$build" \
    --topic-prefix "$KAFKA_TOPIC_PREFIX" >>"$work/stack-up.log" 2>&1 ||
    { tail -n 5 "$work/stack-up.log" >&2; exit 1; }
fi
url="http://127.0.0.1:$port/webhooks/stripe"
echo "== billing-ingester on 127.0.0.1:$port, billing-autopay-worker (prefix $KAFKA_TOPIC_PREFIX)"
env -u DATABASE_URL INGESTER_LISTEN=127.0.0.1:$port LOG_LEVEL="$loglevel" "$ingester" \
  >"$work/ingester.log" 2>&1 &
pids+=($!)
DATABASE_URL=$WORKER_DATABASE_URL STRIPE_API_BASE=http://127.0.0.1:9 \
  STRIPE_SECRET_KEY=sk_test_LlbenchE2e0123456789 LOG_LEVEL="$loglevel" "$worker" \
  >"$work/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "run.sh: the ingester is not ready" >&2; tail "$work/ingester.log" >&2; exit 1; }

paid() { q "SELECT count(*) FROM billing.payments WHERE firm_id = $firm"; }
wait_paid() { # count seconds
  local deadline=$(( $(date +%s) + $2 ))
  until [ "$(paid)" -ge "$1" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: only $(paid) of $1 paid after $2 s" >&2; tail -n 5 "$work/worker.log" >&2; exit 1; }
    sleep 0.2
  done
}
echo "== warm-up: $warm webhooks"
"$post" --url "$url" --fixture "$fixture" --events "$work/warm.events" --out "$work/warm.out" --rate 20 --inflight 4
wait_paid "$warm" 120
sleep 1

echo "== $n webhooks at $rate/s for $duration s"
"$post" --url "$url" --fixture "$fixture" --events "$work/bench.events" --out "$work/bench.out" \
  --rate "$rate" --inflight "$inflight" | tee "$work/post.txt"
# At least 10 minutes, more for a backlog the worker needs longer to apply
# (60,000 webhooks at the ~100-170/s seen on 2 cores).
wait_paid "$(( n + warm ))" "$(( n / 50 > 600 ? n / 50 : 600 ))"

echo "== latencies (ms)"
psql -X -q -v ON_ERROR_STOP=1 "$OWNER_DATABASE_URL" <<SQL
CREATE TEMP TABLE posts (invoice_id bigint, post_us bigint, answer_us bigint, status int);
\\copy posts FROM '$work/bench.out' WITH (DELIMITER ' ')
CREATE TEMP TABLE lat AS
  SELECT p.invoice_id,
         (extract(epoch FROM pg_xact_commit_timestamp(y.xmin)) * 1e6 - p.post_us) / 1000.0 AS books_ms,
         (p.answer_us - p.post_us) / 1000.0 AS post_ms
  FROM posts p JOIN billing.payments y ON y.invoice_id = p.invoice_id;
SELECT count(*) AS webhooks,
       count(*) FILTER (WHERE i.status = 'paid') AS invoices_paid
FROM lat JOIN billing.invoices i ON i.id = lat.invoice_id;
SELECT 'POST -> paid committed' AS span,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY books_ms)::numeric, 1) AS p50,
       round(percentile_disc(0.95) WITHIN GROUP (ORDER BY books_ms)::numeric, 1) AS p95,
       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY books_ms)::numeric, 1) AS p99,
       round(max(books_ms)::numeric, 1) AS max, round(min(books_ms)::numeric, 1) AS min
FROM lat
UNION ALL
SELECT 'POST -> 200 answered',
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY post_ms)::numeric, 1),
       round(percentile_disc(0.95) WITHIN GROUP (ORDER BY post_ms)::numeric, 1),
       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY post_ms)::numeric, 1),
       round(max(post_ms)::numeric, 1), round(min(post_ms)::numeric, 1)
FROM lat;
SELECT count(*) AS payments,
       round(count(*) / nullif(extract(epoch FROM max(pg_xact_commit_timestamp(y.xmin))
             - min(pg_xact_commit_timestamp(y.xmin))), 0)) AS applied_per_s
FROM posts p JOIN billing.payments y ON y.invoice_id = p.invoice_id;
SQL
# Profile: gaps between the worker's consecutive "stripe event applied" log
# lines. Short gaps are the work per event; long ones the worker waiting for
# its next fetch (nothing to do, or the broker holding the fetch).
grep '"stripe event applied"' "$work/worker.log" | python3 -c '
import sys, json, datetime
ts = [datetime.datetime.fromisoformat(json.loads(l)["ts"].rstrip("Z")) for l in sys.stdin]
g = sorted((b - a).total_seconds() * 1000 for a, b in zip(ts, ts[1:]))
if g:
    n = len(g)
    idle = [x for x in g if x > 100]
    print("worker: gap between applied events ms p50 %.0f p90 %.0f p99 %.0f max %.0f;"
          " gaps > 100 ms: %d, %.0f ms of %.0f ms" % (g[n // 2], g[int(n * .9)], g[int(n * .99)],
          g[-1], len(idle), sum(idle), (ts[-1] - ts[0]).total_seconds() * 1000))'
echo "kafka: $kafka; rate asked $rate/s for $duration s; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs in $work"
