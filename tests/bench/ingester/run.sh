#!/usr/bin/env bash
# tests/bench/ingester/run.sh: benchmark billing-ingester with wrk (Debian
# package "wrk") against a private dev broker, and in the same run a bare
# libmicrohttpd server (the floor) and an Express server verifying with the
# official stripe npm package (the comparison). Prints figures and ratios;
# asserts nothing.
#
#   tests/bench/ingester/run.sh [BUILD_DIR]     (default build/release)
# Env: CONNS (64), DURATION (20s), WRK_THREADS (2), EVENTS (512),
#      INGESTER_THREADS (passed to the ingester when set; else its default),
#      EXPRESS (1; 0 skips the Express server), EXPRESS_WORKERS (1),
#      NPM_DIR (where express/ is installed; default a temp dir outside the
#      repository, removed at exit unless NPM_DIR is given, which lets a
#      second run reuse the install).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
here="$root/tests/bench/ingester"
build=${1:-$root/build/release}
conns=${CONNS:-64} duration=${DURATION:-20s} wthreads=${WRK_THREADS:-2} events=${EVENTS:-512}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }
for b in deploy/local/billing-dev-broker workers/ingester/billing-ingester \
         tests/bench/ingester/bench-floor-server; do
  [ -x "$build/$b" ] || { echo "missing $build/$b: build first" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/ll-bench-ingester-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
wait_http() { for _ in $(seq 150); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }

secret=whsec_BenchIngester0123456789
echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
echo "== generating $events signed events of ~1.5 KiB"
pad=$(head -c 1200 /dev/zero | tr '\0' 'x')
now=$(date +%s)
for i in $(seq 1 "$events"); do
  body=$(printf '{"id":"evt_bench_%06d","object":"event","type":"payment_intent.succeeded","api_version":"2024-06-20","created":%s,"data":{"object":{"id":"pi_bench_%d","object":"payment_intent","amount":1099,"currency":"usd","status":"succeeded","description":"%s"}},"livemode":false,"pending_webhooks":1}' "$i" "$now" "$((i % 97))" "$pad")
  sig=$(printf '%s.%s' "$now" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')
  printf 't=%s,v1=%s\t%s\n' "$now" "$sig" "$body"
done > "$dir/requests.tsv"

# The Express comparison: installed with npm outside the repository.
express_url=
if [ "${EXPRESS:-1}" = 1 ]; then
  if command -v node >/dev/null && command -v npm >/dev/null; then
    ndir=${NPM_DIR:-$dir/npm}
    mkdir -p "$ndir/express"
    cp "$here/express/package.json" "$here/express/server.js" "$ndir/express/"
    if (cd "$ndir/express" && npm install --omit=dev --no-audit --no-fund --loglevel=error >/dev/null 2>"$dir/npm.log"); then
      eport=$(free_port)
      PORT=$eport STRIPE_WEBHOOK_SECRET=$secret EXPRESS_WORKERS=${EXPRESS_WORKERS:-1} NODE_ENV=production \
        node "$ndir/express/server.js" 2>"$dir/express.log" &
      pids+=($!)
      wait_http "http://127.0.0.1:$eport/healthz" && express_url="http://127.0.0.1:$eport/webhooks/stripe" ||
        echo "express server did not start: $(tail -3 "$dir/express.log")" >&2
      echo "== express $(node -p "require('$ndir/express/node_modules/express/package.json').version"), stripe $(node -p "require('$ndir/express/node_modules/stripe/package.json').version"), node $(node --version), workers ${EXPRESS_WORKERS:-1}"
    else
      echo "npm install failed, Express skipped: $(tail -3 "$dir/npm.log")" >&2
    fi
  else
    echo "node/npm not found, Express skipped" >&2
  fi
fi

"$build/deploy/local/billing-dev-broker" --bootstrap-file "$dir/bootstrap" >/dev/null 2>"$dir/broker.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/bootstrap" ] && break; sleep 0.1; done
port=$(free_port)
env KAFKA_BROKERS="$(cat "$dir/bootstrap")" STRIPE_WEBHOOK_SECRET=$secret LOG_LEVEL=warn \
  INGESTER_LISTEN=127.0.0.1:$port ${INGESTER_THREADS:+INGESTER_THREADS=$INGESTER_THREADS} \
  "$build/workers/ingester/billing-ingester" 2>"$dir/ingester.log" &
ipid=$!; pids+=($ipid)
fport=$(free_port)
"$build/tests/bench/ingester/bench-floor-server" "$fport" 2 &
pids+=($!)
wait_http "http://127.0.0.1:$port/healthz" || { echo "ingester did not start" >&2; cat "$dir/ingester.log" >&2; exit 1; }

declare -A rps
run() { # name url
  local out
  # warm-up (connections to the broker, page faults, the JIT), not measured
  (cd "$here" && wrk -t"$wthreads" -c"$conns" -d3s -s post.lua "$2" -- "$dir/requests.tsv" >/dev/null)
  out=$(cd "$here" && wrk -t"$wthreads" -c"$conns" -d"$duration" --latency \
        -s post.lua "$2" -- "$dir/requests.tsv" | grep '^BENCH')
  rps[$1]=$(echo "$out" | awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                                 printf "%.0f", v["requests"] / (v["duration_us"] / 1e6) }')
  echo "$out" | awk -v name="$1" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-10s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d  socket errors %d\n",
      name, v["requests"] / (v["duration_us"] / 1e6), v["p50_us"] / 1000, v["p99_us"] / 1000,
      v["non2xx"], v["errors"] }'
}
echo "== wrk: $conns connections, $duration, $wthreads threads"
run floor "http://127.0.0.1:$fport/webhooks/stripe"
run ingester "http://127.0.0.1:$port/webhooks/stripe"
echo "ingester peak RSS: $(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/$ipid/status)"
[ -n "$express_url" ] && run express "$express_url"
awk -v i="${rps[ingester]}" -v f="${rps[floor]}" -v e="${rps[express]:-0}" 'BEGIN {
  printf "ratios: ingester/floor %.1f%% (goal >= 40%%)", 100 * i / f
  if (e > 0) printf ", ingester/express %.1fx (goal >= 8x)", i / e
  printf "\n" }'
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ingester_(events_published_total|publish_failures_total|publish_duration_seconds_(count|bucket))' || true
