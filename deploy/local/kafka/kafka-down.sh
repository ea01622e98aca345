#!/usr/bin/env bash
# kafka-down.sh: stops the nodes kafka-up.sh started, by their PIDs, or
# takes one node down and up again for the fault tests.
#
#   kafka-down.sh [--dir DIR] [--wipe]   stop every node (SIGTERM, then SIGKILL
#                                        after 30 s); --wipe also deletes DIR
#   kafka-down.sh [--dir DIR] --kill N   SIGKILL node N (no clean shutdown)
#   kafka-down.sh [--dir DIR] --stop N   stop node N cleanly (SIGTERM)
#   kafka-down.sh [--dir DIR] --start N  start node N again on its storage and
#                                        wait until its client port listens
#
# Stopping is idempotent: a node that is not running is skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dir="$root/.stack/kafka"
action=all
node=""
wipe=0
usage() { echo "usage: kafka-down.sh [--dir DIR] [--wipe | --kill N | --stop N | --start N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --wipe) wipe=1; shift ;;
    --kill|--stop|--start) action=${1#--}; node=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[ -d "$dir" ] || { [ "$action" = all ] && exit 0; echo "kafka-down.sh: no cluster in $dir" >&2; exit 1; }
if [ "$action" != all ]; then
  case "$node" in ''|*[!0-9]*) usage ;; esac
  [ -f "$dir/node$node/run.sh" ] || { echo "kafka-down.sh: no node $node in $dir" >&2; exit 1; }
fi

pid_of() { [ -f "$dir/node$1.pid" ] && cat "$dir/node$1.pid"; }
alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# Sends sig to node i and waits (bounded) until it is gone.
stop_node() { # node signal wait_s
  local i=$1 sig=$2 wait_s=$3 p
  alive "$i" || { rm -f "$dir/node$i.pid"; return 0; }
  p=$(pid_of "$i")
  kill -"$sig" "$p" 2>/dev/null || true
  for _ in $(seq 1 $((wait_s * 10))); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    echo "kafka-down.sh: node $i (pid $p) still running after ${wait_s}s: SIGKILL" >&2
    kill -KILL "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/node$i.pid"
}

case "$action" in
  kill) stop_node "$node" KILL 10 ;;
  stop) stop_node "$node" TERM 30 ;;
  start)
    if ! alive "$node"; then
      nohup "$dir/node$node/run.sh" >>"$dir/node$node/server.log" 2>&1 </dev/null &
      echo $! >"$dir/node$node.pid"
    fi
    port=$(sed -n 's/^listeners=CLIENT:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$dir/node$node/server.properties")
    for _ in $(seq 1 600); do
      alive "$node" || { tail -n 30 "$dir/node$node/server.log" >&2; echo "kafka-down.sh: node $node exited" >&2; exit 1; }
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
      sleep 0.1
    done
    echo "kafka-down.sh: node $node does not listen on $port after 60 s" >&2
    exit 1
    ;;
  all)
    # All at once: a node stopping alone would wait for leadership moves to
    # peers that are stopping too.
    for f in "$dir"/node*.pid; do
      [ -f "$f" ] || continue
      i=${f##*/node}; i=${i%.pid}
      alive "$i" && kill -TERM "$(pid_of "$i")" 2>/dev/null || true
    done
    for f in "$dir"/node*.pid; do
      [ -f "$f" ] || continue
      i=${f##*/node}; i=${i%.pid}
      stop_node "$i" TERM 30
    done
    [ "$wipe" -eq 0 ] || rm -rf "$dir"
    ;;
esac
