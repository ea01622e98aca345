#!/usr/bin/env bash
# run.sh: notifier benchmark (issue 17; docs/BENCHMARKS.md "Notifier"). Not
# run by ctest; prints figures and never asserts a time.
#
#   tests/bench/notifier/run.sh [BUILD_DIR]      (default build/release)
#
# Settings (environment): N issued invoices (10000); NOTIFIERS, the
# billing-notifier instance counts to time (default "1 2"); FLOOR_DOCS
# documents rendered by floor (a) (default N), FLOOR_MSGS messages sent by
# floor (b) (default N); BENCH_LOG_LEVEL of the notifiers (info, as in
# production); STACK_DIR (default a new directory under /tmp); TIMEOUT_S per
# measurement (900).
#
# Starts everything it uses and stops it on exit, by PID: its own local
# stack (deploy/local/stack-up.sh: PostgreSQL + dev broker), and per
# measurement billing-invoicing-worker, `bench-notifier sink` (the test
# SMTP server of tests/support/smtp_sink.c, counting messages) and the
# notifiers. Seeds N mixed engagements once (seed.sql: 20 firms with
# letterheads, N/10 clients with e-mail, 4 lines per invoice) into a
# template database; then for each notifier count:
#   1. a fresh copy of the template (CREATE DATABASE ... TEMPLATE, untimed)
#      and a fresh topic prefix; billing-invoicing-worker and `billingctl
#      invoices generate` issue the N invoices and relay their
#      invoice.issued events to <prefix>invoices, the invoicing worker is
#      stopped (untimed: the events wait in Kafka);
#   2. the SMTP sink and K billing-notifier processes start; the clock runs
#      from their start until billing.notifications holds N sent
#      invoice_issued rows (polled). The notifiers' CPU (utime + stime from
#      /proc/PID/stat), peak RSS (VmHWM) and the PostgreSQL backends' CPU
#      are read before they are stopped; the sink's count must equal N.
# Then the floors, on the last copy's invoices:
#   (a) rendering alone: `bench-notifier render`, document_render of the
#       same invoices' facts (dumped with their stored sha256 beforehand) in
#       one process, no database, no SMTP;
#   (b) SMTP alone: `bench-notifier smtp`, smtp_send (libcurl, as the
#       notifier) of a message of the same size (the median stored PDF
#       attached) to a fresh sink, in a loop.
# The notifier's throughput is given as a share of the slower floor. Last,
# the evidence that rendering is not on the invoicing path: the symbols and
# shared libraries of billing-invoicing-worker (nm, readelf, ldd) against
# billing-notifier's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$root/build/release}" && pwd)
n=${N:-10000}
counts=${NOTIFIERS:-1 2}
floor_docs=${FLOOR_DOCS:-$n}
floor_msgs=${FLOOR_MSGS:-$n}
timeout_s=${TIMEOUT_S:-900}
day=2026-11-24
ctl="$build/workers/billingctl/billingctl"
inv_worker="$build/workers/invoicing/billing-invoicing-worker"
notifier="$build/workers/notifier/billing-notifier"
bench="$build/tests/bench/notifier/bench-notifier"
for b in "$ctl" "$inv_worker" "$notifier" "$bench"; do
  [ -x "$b" ] || { echo "run.sh: $b not built (cmake --build $build)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/llbench-notifier.XXXXXX)
stack=${STACK_DIR:-$work/stack}
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$root/deploy/local/stack-down.sh" --dir "$stack" >/dev/null 2>&1 || true
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# x1000 / y as a decimal with 2 places: dec2 X Y -> X/Y.
dec2() { local v=$(( $1 * 100 / ($2 > 0 ? $2 : 1) )); printf '%d.%02d' $(( v / 100 )) $(( v % 100 )); }

echo "== stack in $stack (load average $(load))"
"$root/deploy/local/stack-up.sh" --dir "$stack" --build "$build" --db llbench_notifier \
  >"$work/stack-up.log" 2>&1 || { cat "$work/stack-up.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$stack/env"
set +a
export PGOPTIONS="-c client_min_messages=warning"
base=${OWNER_DATABASE_URL%/*}
template=${OWNER_DATABASE_URL##*/}
db_url() { local u=$1; echo "${u%/*}/$2"; } # the same role on database $2
run_owner=$(db_url "$OWNER_DATABASE_URL" llbench_nrun)
run_worker=$(db_url "$WORKER_DATABASE_URL" llbench_nrun)
run_operator=$(db_url "$DATABASE_URL" llbench_nrun)
adm() { psql -X -q -v ON_ERROR_STOP=1 "$base/postgres" -c "$1" >/dev/null; }
q() { psql -X -qtA -v ON_ERROR_STOP=1 "$run_owner" -c "$1"; }
postmaster=$(head -n 1 "$stack/pg/data/postmaster.pid")
clk_tck=$(getconf CLK_TCK)

# CPU ms (utime + stime) of the given PIDs, summed.
cpu_ms_of() {
  local p t=0 f
  for p in "$@"; do
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue # fields from state on
    # shellcheck disable=SC2086
    set -- $f
    t=$(( t + ${12} + ${13} ))
  done
  echo $(( t * 1000 / clk_tck ))
}
hwm_kib_of() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# CPU ms of every PostgreSQL process (the postmaster's children).
pg_cpu_ms() {
  local kids
  kids=$(ps -o pid= --ppid "$postmaster" | tr -d ' ' | tr '\n' ' ')
  # shellcheck disable=SC2086
  cpu_ms_of $kids
}

echo "== seeding $n engagements (seed.sql) into llbench_nseed"
t0=$(now_ms)
adm "DROP DATABASE IF EXISTS llbench_nrun"
adm "DROP DATABASE IF EXISTS llbench_nseed"
adm "CREATE DATABASE llbench_nseed TEMPLATE \"$template\""
psql -X -q -v ON_ERROR_STOP=1 -v n="$n" "$(db_url "$OWNER_DATABASE_URL" llbench_nseed)" \
  -f "$here/seed.sql" >/dev/null
echo "seeded in $(( $(now_ms) - t0 )) ms"

# issue_invoices PREFIX: N issued invoices in a fresh llbench_nrun, their
# invoice.issued events relayed to PREFIXinvoices; untimed.
issue_invoices() {
  local prefix=$1 group="${1}billing-invoicing-worker" wpid deadline
  adm "DROP DATABASE IF EXISTS llbench_nrun"
  adm "CREATE DATABASE llbench_nrun TEMPLATE llbench_nseed STRATEGY FILE_COPY"
  # A tick for a firm that does not exist creates the topic and nothing else.
  KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_operator LOG_LEVEL=warn \
    "$ctl" invoices generate --date "$day" --firm-id 999999999 >/dev/null
  KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_worker LOG_LEVEL=warn \
    "$inv_worker" >"$work/invoicing-$prefix.log" 2>&1 &
  wpid=$!
  pids+=("$wpid")
  deadline=$(( $(date +%s) + 120 ))
  until [ "$(q "SELECT count(*) FROM billing.processed_messages WHERE consumer = '$group'")" -ge 12 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: the invoicing worker did not get ready" >&2; exit 1; }
    sleep 0.2
  done
  KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_operator LOG_LEVEL=warn \
    "$ctl" invoices generate --date "$day" >/dev/null
  deadline=$(( $(date +%s) + 600 ))
  until [ "$(q "SELECT count(*) FROM billing.processed_messages WHERE consumer = '$group'")" -ge 24 ] &&
        [ "$(q "SELECT count(*) FROM billing.outbox WHERE published_at IS NULL")" -eq 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: invoicing or its relay not done in 10 min" >&2; exit 1; }
    sleep 0.2
  done
  kill -TERM "$wpid"
  wait "$wpid" || true
  local issued events
  issued=$(q "SELECT count(*) FROM billing.invoices WHERE status = 'sent' AND legal_number IS NOT NULL")
  events=$(q "SELECT count(*) FROM billing.outbox WHERE payload->>'type' = 'invoice.issued' AND published_at IS NOT NULL")
  [ "$issued" -eq "$n" ] && [ "$events" -eq "$n" ] ||
    { echo "run.sh: $issued issued invoices and $events invoice.issued events relayed, wanted $n" >&2; exit 1; }
  # The notifier also consumes ticks.reminders: a tick for no firm creates
  # that topic, so that it subscribes to existing topics only.
  KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_operator LOG_LEVEL=warn \
    "$ctl" reminders run --date "$day" --firm-id 999999999 >/dev/null
}

# start_sink NAME: the counting SMTP sink; sets sink_pid and sink_url.
start_sink() {
  rm -f "$work/$1.addr"
  "$bench" sink "$work/$1.addr" >"$work/$1.out" 2>"$work/$1.log" &
  sink_pid=$!
  pids+=("$sink_pid")
  for _ in $(seq 1 100); do [ -s "$work/$1.addr" ] && break; sleep 0.05; done
  [ -s "$work/$1.addr" ] || { echo "run.sh: the SMTP sink did not start" >&2; exit 1; }
  sink_url="smtp://$(head -n 1 "$work/$1.addr")"
}
# stop_sink NAME: sets sink_msgs and sink_bytes (not in a subshell: it
# waits for its child).
stop_sink() {
  kill -TERM "$sink_pid"
  wait "$sink_pid" || true
  read -r sink_msgs sink_bytes < <(sed -n 's/^sink messages=\([0-9]*\) bytes=\([0-9]*\)$/\1 \2/p' "$work/$1.out")
  : "${sink_msgs:=0}" "${sink_bytes:=0}"
}

declare -A rate_x100 cpu_per_doc_us
measure() {
  local k=$1 prefix="nbench$$-$1." npids=() i
  echo "== $k notifier(s): issuing $n invoices (untimed; load average $(load))"
  issue_invoices "$prefix"
  start_sink "sink-$k"
  local pg0 t0 deadline sent=0 failed=0
  pg0=$(pg_cpu_ms)
  t0=$(now_ms)
  for i in $(seq 1 "$k"); do
    KAFKA_TOPIC_PREFIX=$prefix DATABASE_URL=$run_worker SMTP_URL=$sink_url \
      SMTP_FROM=billing@nbench.example LOG_LEVEL=${BENCH_LOG_LEVEL:-info} \
      "$notifier" >"$work/notifier-$k-$i.log" 2>&1 &
    npids+=($!)
    pids+=($!)
  done
  deadline=$(( $(date +%s) + timeout_s ))
  while :; do
    read -r sent failed < <(q "SELECT count(*) FILTER (WHERE status = 'sent'),
                                      count(*) FILTER (WHERE status = 'failed')
                                 FROM billing.notifications WHERE kind = 'invoice_issued'" | tr '|' ' ')
    [ "$sent" -ge "$n" ] && break
    [ "$failed" -eq 0 ] || { echo "run.sh: $failed notifications failed" >&2; tail -n 3 "$work/notifier-$k-1.log" >&2; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "run.sh: only $sent of $n sent after $timeout_s s" >&2; exit 1; }
    sleep 0.25
  done
  local wall_ms=$(( $(now_ms) - t0 ))
  local cpu hwm="" pg1 p
  cpu=$(cpu_ms_of "${npids[@]}")
  for p in "${npids[@]}"; do hwm="$hwm $(( $(hwm_kib_of "$p") / 1024 ))"; done
  pg1=$(pg_cpu_ms)
  kill -TERM "${npids[@]}"
  for p in "${npids[@]}"; do wait "$p" || true; done
  local docs steady_ms first_ms
  stop_sink "sink-$k"
  docs=$(q "SELECT count(*) FROM billing.invoice_documents WHERE kind = 'invoice'")
  read -r steady_ms first_ms < <(q "SELECT round(extract(epoch FROM max(sent_at) - min(sent_at)) * 1000),
                                           round(extract(epoch FROM min(sent_at)) * 1000)
                                      FROM billing.notifications WHERE kind = 'invoice_issued'" | tr '|' ' ')
  first_ms=$(( first_ms - t0 ))
  local msgs=$sink_msgs bytes=$sink_bytes
  rate_x100[$k]=$(( sent * 100000 / (wall_ms > 0 ? wall_ms : 1) ))
  cpu_per_doc_us[$k]=$(( cpu * 1000 / (docs > 0 ? docs : 1) ))
  echo "$k notifier(s): $sent e-mails sent, $docs documents rendered and stored, in $wall_ms ms" \
       "(processes started -> last sent; first sent after $first_ms ms)"
  echo "  documents rendered/s: $(dec2 $(( docs * 1000 )) "$wall_ms"); e-mails sent/s: $(dec2 $(( sent * 1000 )) "$wall_ms")" \
       "(first to last sent_at: $steady_ms ms = $(dec2 $(( (sent - 1) * 1000 )) "$steady_ms")/s)"
  echo "  notifier CPU: $cpu ms in all = $(dec2 "$cpu" "$docs") ms per document;" \
       "PostgreSQL backends meanwhile: $(( pg1 - pg0 )) ms = $(dec2 $(( pg1 - pg0 )) "$docs") ms per document"
  echo "  notifier peak RSS (VmHWM, MiB):$hwm"
  echo "  sink: $msgs messages, $(( bytes / (msgs > 0 ? msgs : 1) )) bytes each on average"
  [ "$msgs" -eq "$sent" ] || echo "WARNING: the sink counted $msgs messages for $sent sent notifications"
  [ "$docs" -eq "$n" ] || echo "WARNING: $docs documents stored for $n invoices"
}

for k in $counts; do measure "$k"; done

echo "== floor (a): document_render alone, $floor_docs documents in one process (load average $(load))"
q "SELECT d.sha256 || E'\t' || billing.document_facts(d.invoice_id)::text
     FROM billing.invoice_documents d WHERE d.kind = 'invoice'
    ORDER BY d.invoice_id LIMIT $floor_docs" >"$work/facts.tsv"
render=$("$bench" render "$work/facts.tsv")
r_docs=$(sed -n 's/.* docs=\([0-9]*\) .*/\1/p' <<<"$render")
r_wall=$(sed -n 's/.* wall_ms=\([0-9]*\) .*/\1/p' <<<"$render")
r_cpu=$(sed -n 's/.* cpu_ms=\([0-9]*\) .*/\1/p' <<<"$render")
r_same=$(sed -n 's/.* same_sha256=\([0-9]*\) .*/\1/p' <<<"$render")
r_hwm=$(sed -n 's/.* hwm_kib=\([0-9]*\)$/\1/p' <<<"$render")
r_bytes=$(sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' <<<"$render")
render_x100=$(( r_docs * 100000 / (r_wall > 0 ? r_wall : 1) ))
echo "floor (a): $r_docs documents in $r_wall ms = $(dec2 "$render_x100" 100) documents/s;" \
     "$(dec2 "$r_cpu" "$r_docs") ms CPU per document; $(( r_bytes / (r_docs > 0 ? r_docs : 1) )) bytes each;" \
     "peak RSS $(( r_hwm / 1024 )) MiB; $r_same of $r_docs identical to the stored document (sha256)"

echo "== floor (b): smtp_send alone, $floor_msgs messages to the sink (load average $(load))"
q "SELECT encode(bytes, 'base64') FROM billing.invoice_documents WHERE kind = 'invoice'
    ORDER BY length(bytes), id OFFSET (SELECT count(*) / 2 FROM billing.invoice_documents) LIMIT 1" |
  base64 -d >"$work/median.pdf"
start_sink sink-floor
smtp=$(SMTP_URL=$sink_url SMTP_FROM=billing@nbench.example "$bench" smtp "$floor_msgs" "$work/median.pdf")
stop_sink sink-floor
s_sent=$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' <<<"$smtp")
s_wall=$(sed -n 's/.* wall_ms=\([0-9]*\) .*/\1/p' <<<"$smtp")
s_cpu=$(sed -n 's/.* cpu_ms=\([0-9]*\) .*/\1/p' <<<"$smtp")
s_size=$(sed -n 's/.* message_bytes=\([0-9]*\) .*/\1/p' <<<"$smtp")
smtp_x100=$(( s_sent * 100000 / (s_wall > 0 ? s_wall : 1) ))
echo "floor (b): $s_sent messages of $s_size bytes in $s_wall ms = $(dec2 "$smtp_x100" 100) messages/s;" \
     "$(dec2 "$s_cpu" "$s_sent") ms client CPU per message; the sink counted $sink_msgs"

slower=$render_x100 slower_name="rendering (a)"
[ "$smtp_x100" -lt "$slower" ] && { slower=$smtp_x100; slower_name="SMTP (b)"; }
echo
echo "== summary (N=$n; load average now $(load))"
echo "slower floor: $slower_name, $(dec2 "$slower" 100)/s"
for k in $counts; do
  echo "$k notifier(s): $(dec2 "${rate_x100[$k]}" 100) e-mails/s = $(( rate_x100[$k] * 100 / (slower > 0 ? slower : 1) ))% of the slower floor;" \
       "$(dec2 "${cpu_per_doc_us[$k]}" 1000) ms notifier CPU per document"
done

echo
echo "== rendering is not on the invoicing path"
for b in "$inv_worker" "$notifier"; do
  echo "$(basename "$b"): document_* functions defined: $(nm "$b" | grep -c ' [Tt] document_' || true);" \
       "pango/cairo/fontconfig symbols referenced: $(nm -u "$b" | grep -c -E ' (pango_|cairo_|Fc[A-Z])' || true);" \
       "NEEDED: $(readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -E 'pango|cairo|fontconfig' | tr '\n' ' ' || true)"
  echo "  ldd: $(ldd "$b" | grep -c -E 'pango|cairo|fontconfig|harfbuzz|freetype' || true) pango/cairo/fontconfig/harfbuzz/freetype libraries loaded"
done
echo "logs in $work"
