#!/usr/bin/env bash
# stack-down.sh: stops what stack-up.sh started in DIR, by PID.
#   stack-down.sh [--dir DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir="$root/.stack/local"
[ "${1:-}" = "--dir" ] && dir=$2
[ -d "$dir" ] || exit 0

stop_pid() { # pidfile name
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}
for f in "$dir"/*.pid; do
  [ -e "$f" ] && stop_pid "$f"
done
[ -d "$dir/kafka" ] && "$here/kafka/kafka-down.sh" --dir "$dir/kafka"
[ -d "$dir/pg" ] && "$here/pg-stop.sh" --dir "$dir/pg"
exit 0
