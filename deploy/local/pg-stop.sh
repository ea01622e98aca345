#!/usr/bin/env bash
# pg-stop.sh: stops the private cluster started by pg-start.sh.
#
#   deploy/local/pg-stop.sh [--dir DIR]      (default <repo>/.stack/pg)
#
# Fast shutdown (open sessions are rolled back). Not running: nothing to do.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
dir="$repo_root/.stack/pg"

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) [ $# -ge 2 ] || { echo "usage: $0 [--dir DIR]" >&2; exit 2; }; dir="$2"; shift 2 ;;
        --dir=*) dir="${1#--dir=}"; shift ;;
        *) echo "usage: $0 [--dir DIR]" >&2; exit 2 ;;
    esac
done

sdir="$dir"
[ ! -f "$dir/serverdir" ] || sdir="$(cat "$dir/serverdir")"
data="$sdir/data"
if [ ! -f "$data/postmaster.pid" ]; then
    echo "pg-stop.sh: no cluster running in $dir"
    exit 0
fi

pgbin=""
for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -n); do
    [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] && pgbin="/usr/lib/postgresql/$v/bin"
done
[ -n "$pgbin" ] || { echo "pg-stop.sh: no PostgreSQL server under /usr/lib/postgresql" >&2; exit 1; }

# Same user as the server: the owner of the data directory.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    owner="$(stat -c %U "$data")"
    [ "$owner" = "root" ] || as_pg=(runuser -u "$owner" --)
fi

if "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    echo "pg-stop.sh: stopped the cluster in $dir"
else
    echo "pg-stop.sh: no cluster running in $dir"
fi
