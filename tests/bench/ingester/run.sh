#!/usr/bin/env bash
# tests/bench/ingester/run.sh: benchmark billing-ingester with wrk (Debian
# package "wrk") and, in the same run, a bare libmicrohttpd server (the
# floor), an Express server verifying with the official stripe npm package
# and a JVM service verifying with stripe-java and producing with
# kafka-clients (acks=all, one acknowledgement awaited per request). Prints
# one line per server, the ratios and the ingester's peak RSS; asserts
# nothing.
#
#   tests/bench/ingester/run.sh [--kafka dev|real] [BUILD_DIR]   (default build/release, dev)
#
# --kafka dev: a private billing-dev-broker (librdkafka's mock cluster).
# --kafka real: a private 3-node Apache Kafka cluster (KRaft) started with
#   deploy/local/kafka/kafka-up.sh in <checkout>/.stack/bench-ingester-<pid>/
#   (the contract's topics with replication factor 3, min.insync.replicas 2;
#   client ports KAFKA_PORT_BASE.. +2, default the first free of 29092,
#   29292, ...), stopped and deleted at exit. The ingester and the JVM peer
#   both produce to <prefix>stripe.payments on it.
# Env: CONNS (64), DURATION (20s), WARMUP (3s), WRK_THREADS (2), EVENTS (512),
#      RUNS (1: repeat every server's measurement RUNS times, servers kept
#      up, and print min/median/max at the end),
#      INGESTER_THREADS (passed to the ingester when set; else its default),
#      EXPRESS (1; 0 skips the Express server), EXPRESS_WORKERS (1),
#      NPM_DIR (where express/ is installed; default a temp dir outside the
#      repository, removed at exit unless NPM_DIR is given, which lets a
#      second run reuse the install),
#      JVM (1; 0 skips the JVM peer), JVM_THREADS (CONNS), JVM_LINGER_MS (1),
#      JVM_OPTS (-Xms256m -Xmx256m), MVN_DIR (Maven's build folder for jvm/,
#      default a temp dir, like NPM_DIR; the build tries `mvn -o` first and
#      goes online only when ~/.m2 lacks something).
# The JVM peer runs only with --kafka real: kafka-clients (4.1.1 and 3.9.2
# tried) cannot use the dev broker. librdkafka 2.0.2's mock supports
# ApiVersions v0-v2 only; it answers the client's v4 request with
# UNSUPPORTED_VERSION in a body the Java client reads as a throttle of
# 1,179,648 ms, so no broker is ever ready and every send times out after
# 60 s (docs/BENCHMARKS.md, "Ingester").
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
here="$root/tests/bench/ingester"
kafka=dev
build=$root/build/release
while [ $# -gt 0 ]; do
  case "$1" in
    --kafka) kafka=${2:-}; shift 2 || { echo "run.sh: --kafka needs dev or real" >&2; exit 2; } ;;
    --kafka=*) kafka=${1#--kafka=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "usage: run.sh [--kafka dev|real] [BUILD_DIR]" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case "$kafka" in dev|real) ;; *) echo "run.sh: --kafka must be dev or real" >&2; exit 2 ;; esac
conns=${CONNS:-64} duration=${DURATION:-20s} warmup=${WARMUP:-3s} wthreads=${WRK_THREADS:-2} events=${EVENTS:-512}
runs=${RUNS:-1}
case "$runs" in ''|*[!0-9]*|0) echo "run.sh: RUNS must be a positive number" >&2; exit 2 ;; esac
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }
for b in deploy/local/billing-dev-broker workers/ingester/billing-ingester \
         tests/bench/ingester/bench-floor-server; do
  [ -x "$build/$b" ] || { echo "missing $build/$b: build first" >&2; exit 1; }
done
[ "$kafka" = dev ] || [ -x "$build/deploy/local/billing-kafka-admin" ] ||
  { echo "missing $build/deploy/local/billing-kafka-admin: build first" >&2; exit 1; }

dir=$(mktemp -d /tmp/ll-bench-ingester-XXXXXX)
kdir=
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "$kdir" ] || "$root/deploy/local/kafka/kafka-down.sh" --dir "$kdir" --wipe >/dev/null 2>&1 || true
  [ -z "$kdir" ] || rmdir "$(dirname "$kdir")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
port_free() { python3 -c 'import socket,sys;s=socket.socket();s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }
wait_http() { for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

secret=whsec_BenchIngester0123456789
echo "== load average: $(loadavg) ($(nproc) CPUs); kafka $kafka; $runs run(s)"
# Stripe's signatures are valid for 300 s (the ingester and both peers check
# the tolerance), so the events are signed again at the start of every run,
# after the brokers and servers are up.
sign_events() {
  local i body sig now pad
  pad=$(head -c 1200 /dev/zero | tr '\0' 'x')
  now=$(date +%s)
  for i in $(seq 1 "$events"); do
    body=$(printf '{"id":"evt_bench_%06d","object":"event","type":"payment_intent.succeeded","api_version":"2024-06-20","created":%s,"data":{"object":{"id":"pi_bench_%d","object":"payment_intent","amount":1099,"currency":"usd","status":"succeeded","description":"%s"}},"livemode":false,"pending_webhooks":1}' "$i" "$now" "$((i % 97))" "$pad")
    sig=$(printf '%s.%s' "$now" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')
    printf 't=%s,v1=%s\t%s\n' "$now" "$sig" "$body"
  done > "$dir/requests.tsv"
}

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

# The JVM peer: built with Maven outside the repository (offline first).
jar=
if [ "${JVM:-1}" = 1 ]; then
  if [ "$kafka" = dev ]; then
    echo "== jvm peer skipped: kafka-clients cannot use the dev broker (it reads the mock's ApiVersions answer as a 20-minute throttle; see the header of run.sh); run with --kafka real"
  elif ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    echo "== jvm peer skipped: java or mvn not found (apt-get install openjdk-17-jdk-headless maven)"
  else
    mdir=${MVN_DIR:-$dir/mvn}
    mvn_build() { mvn -B -q "$@" -f "$here/jvm/pom.xml" -Djvm.build.dir="$mdir" package >"$dir/mvn.log" 2>&1; }
    if mvn_build -o || mvn_build; then
      jar=$mdir/ledgerline-bench-jvm.jar
      echo "== jvm peer: $(java -version 2>&1 | head -n 1), stripe-java $(sed -n 's:.*<stripe.version>\(.*\)</stripe.version>.*:\1:p' "$here/jvm/pom.xml"), kafka-clients $(sed -n 's:.*<kafka.clients.version>\(.*\)</kafka.clients.version>.*:\1:p' "$here/jvm/pom.xml"), ${JVM_THREADS:-$conns} threads, linger.ms ${JVM_LINGER_MS:-1}"
    else
      echo "== jvm peer skipped: the Maven build failed: $(grep -m 3 ERROR "$dir/mvn.log")" >&2
    fi
  fi
fi

if [ "$kafka" = dev ]; then
  "$build/deploy/local/billing-dev-broker" --bootstrap-file "$dir/bootstrap" >/dev/null 2>"$dir/broker.log" &
  pids+=($!)
  for _ in $(seq 300); do [ -s "$dir/bootstrap" ] && break; sleep 0.1; done
  [ -s "$dir/bootstrap" ] || { echo "the dev broker did not start" >&2; cat "$dir/broker.log" >&2; exit 1; }
  brokers=$(cat "$dir/bootstrap")
  echo "== dev broker (librdkafka mock) at $brokers"
else
  kbase=${KAFKA_PORT_BASE:-}
  if [ -z "$kbase" ]; then
    for b in 29092 29292 29492 29692 29892 30092; do
      ok=1
      for o in 0 1 2 100 101 102; do port_free $((b + o)) || { ok=0; break; }; done
      [ "$ok" = 1 ] && { kbase=$b; break; }
    done
    [ -n "$kbase" ] || { echo "no free port base for the Kafka cluster (set KAFKA_PORT_BASE)" >&2; exit 1; }
  fi
  kdir="$root/.stack/bench-ingester-$$/kafka"
  mkdir -p "$kdir"
  echo "== starting a 3-node Apache Kafka cluster in $kdir (ports $kbase..$((kbase + 2)))"
  # A node may exit while the cluster forms on a loaded machine (registration
  # timing out): kafka-up.sh restarts only the nodes not running, so one more
  # call is tried before giving up.
  rc=1
  for attempt in 1 2; do
    rc=0
    "$root/deploy/local/kafka/kafka-up.sh" --dir "$kdir" --build "$build" --port-base "$kbase" \
      >>"$dir/kafka-up.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || break
    echo "== kafka-up.sh failed ($rc, attempt $attempt): $(grep -h -m 1 -E 'ERROR|FATAL' "$kdir"/node*/server.log 2>/dev/null | cut -c1-200)" >&2
  done
  [ "$rc" -eq 0 ] || { tail -n 20 "$dir/kafka-up.log" >&2; echo "kafka-up.sh failed ($rc)" >&2; exit 1; }
  brokers=$(cat "$kdir/bootstrap")
  echo "== $(tail -n 1 "$dir/kafka-up.log" | sed 's/^kafka-up.sh: //')"
fi

port=$(free_port)
env KAFKA_BROKERS="$brokers" STRIPE_WEBHOOK_SECRET=$secret LOG_LEVEL=warn \
  INGESTER_LISTEN=127.0.0.1:$port ${INGESTER_THREADS:+INGESTER_THREADS=$INGESTER_THREADS} \
  "$build/workers/ingester/billing-ingester" 2>"$dir/ingester.log" &
ipid=$!; pids+=($ipid)
fport=$(free_port)
"$build/tests/bench/ingester/bench-floor-server" "$fport" 2 &
pids+=($!)
wait_http "http://127.0.0.1:$port/healthz" || { echo "ingester did not start" >&2; cat "$dir/ingester.log" >&2; exit 1; }

jvm_url= jpid=
if [ -n "$jar" ]; then
  jport=$(free_port)
  # shellcheck disable=SC2086
  env PORT="$jport" STRIPE_WEBHOOK_SECRET=$secret KAFKA_BROKERS="$brokers" JVM_THREADS="${JVM_THREADS:-$conns}" \
    JVM_LINGER_MS="${JVM_LINGER_MS:-1}" java ${JVM_OPTS:--Xms256m -Xmx256m} -jar "$jar" 2>"$dir/jvm.log" &
  jpid=$!; pids+=($jpid)
  if wait_http "http://127.0.0.1:$jport/healthz"; then
    jvm_url="http://127.0.0.1:$jport/webhooks/stripe"
  else
    echo "jvm peer did not start: $(tail -3 "$dir/jvm.log")" >&2
  fi
fi

# One line of results per measurement: "run key value".
results="$dir/results"
: >"$results"
run() { # run name url
  local out
  # warm-up (connections to the broker, page faults, the JIT), not measured
  (cd "$here" && wrk -t"$wthreads" -c"$conns" -d"$warmup" -s post.lua "$3" -- "$dir/requests.tsv" >/dev/null)
  out=$(cd "$here" && wrk -t"$wthreads" -c"$conns" -d"$duration" --latency \
        -s post.lua "$3" -- "$dir/requests.tsv" | grep '^BENCH')
  echo "$out" | awk -v run="$1" -v name="$2" -v res="$results" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    rps = v["requests"] / (v["duration_us"] / 1e6)
    printf "%-10s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d  socket errors %d\n",
      name, rps, v["p50_us"] / 1000, v["p99_us"] / 1000, v["non2xx"], v["errors"]
    printf "%d %s_rps %.0f\n%d %s_p99 %.2f\n", run, name, rps, run, name, v["p99_us"] / 1000 >> res }'
}
value() { awk -v r="$1" -v k="$2" '$1 == r && $2 == k { print $3 }' "$results"; }
rss() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

echo "== wrk: $conns connections, $warmup warm-up + $duration per server, $wthreads threads"
for r in $(seq 1 "$runs"); do
  sign_events
  echo "== run $r of $runs ($events events of ~1.5 KiB signed now), load average $(loadavg)"
  run "$r" floor "http://127.0.0.1:$fport/webhooks/stripe"
  run "$r" ingester "http://127.0.0.1:$port/webhooks/stripe"
  [ -z "$express_url" ] || run "$r" express "$express_url"
  [ -z "$jvm_url" ] || run "$r" jvm "$jvm_url"
  echo "$r ingester_rss $(rss "$ipid")" >>"$results"
  [ -z "$jvm_url" ] || echo "$r jvm_rss $(rss "$jpid")" >>"$results"
  awk -v r="$r" -v i="$(value "$r" ingester_rps)" -v f="$(value "$r" floor_rps)" \
      -v e="$(value "$r" express_rps)" -v j="$(value "$r" jvm_rps)" -v res="$results" 'BEGIN {
    printf "ratios: ingester/floor %.1f%% (goal >= 40%%)", 100 * i / f
    printf "%d ingester/floor %.1f\n", r, 100 * i / f >> res
    if (e > 0) { printf ", ingester/express %.2fx", i / e; printf "%d ingester/express %.2f\n", r, i / e >> res }
    if (j > 0) { printf ", ingester/jvm %.2fx", i / j; printf "%d ingester/jvm %.2f\n", r, i / j >> res }
    printf "\n" }'
  echo "ingester peak RSS: $(value "$r" ingester_rss) MiB (goal < 64 MiB)${jpid:+; jvm peer peak RSS: $(value "$r" jvm_rss) MiB}"
done
echo "load average at the end: $(loadavg)"

if [ "$runs" -gt 1 ]; then
  echo "== min / median / max over $runs runs (kafka $kafka)"
  for k in floor_rps floor_p99 ingester_rps ingester_p99 express_rps express_p99 jvm_rps jvm_p99 \
           ingester/floor ingester/express ingester/jvm ingester_rss jvm_rss; do
    awk -v k="$k" '$2 == k { print $3 }' "$results" | sort -g | awk -v k="$k" '
      { v[NR] = $1 }
      END {
        if (NR == 0) exit
        med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        unit = k ~ /_rps$/ ? " req/s" : k ~ /_p99$/ ? " ms" : k ~ /_rss$/ ? " MiB" : k ~ /floor$/ ? "%" : "x"
        fmt = k ~ /_rps$/ ? "%.0f" : k ~ /floor$|_rss$/ ? "%.1f" : "%.2f"
        printf "%-17s " fmt " / " fmt " / " fmt "%s\n", k, v[1], med, v[NR], unit }'
  done
fi
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^ingester_(events_published_total|publish_failures_total|publish_duration_seconds_(count|bucket))' || true
