#!/usr/bin/env bash
# pg-start.sh: starts a private PostgreSQL cluster for development and tests.
#
#   deploy/local/pg-start.sh [--dir DIR] [--port PORT] [--db NAME]...
#
# - DIR (default <repo>/.stack/pg) holds the data directory (DIR/data), the
#   unix socket (DIR/socket), the server log (DIR/postgres.log) and DIR/env.
#   As root, when the server user cannot reach DIR (a checkout under /root),
#   the server's files go to /var/tmp/ledgerline-pg-<hash of DIR> instead;
#   DIR/serverdir names where they are.
# - PORT defaults to the first free TCP port from 55432 upward; a cluster that
#   is already running in DIR keeps its port.
# - Each --db NAME is created when missing (default: ledgerline). When
#   BILLINGCTL names an executable, `$BILLINGCTL db migrate` is run against
#   each database.
# - Debian's server binaries (/usr/lib/postgresql/<newest>/bin); listens on
#   127.0.0.1 and the socket only; trust authentication (a loopback-only dev
#   cluster), fsync off (disposable data). Sized for this project's machine
#   class (2 cores, 24 GiB): shared_buffers 2GB, max_wal_size 8GB,
#   checkpoint_timeout 30min, wal_buffers 64MB, so that a 1M-invoice tick
#   (tests/bench/invoicing) is not spent evicting buffers and checkpointing;
#   the memory is only taken as pages are used.
# - PostgreSQL refuses to run as root: as root the server runs as the
#   `postgres` user (or a `ledgerline-pg` system user created on demand).
#
# - Database roles (sql/010_roles.sql creates them when it migrates):
#   billing_owner, billing_worker and billing_operator get a password of this
#   cluster (random, kept in DIR/role-passwords, mode 600) so that their URLs
#   look like production's; authentication is trust all the same.
#
# Writes DIR/env (PGPORT=..., DATABASE_URL=... of the superuser, and, once
# the roles exist, OWNER_DATABASE_URL (the superuser: it migrates and seeds),
# WORKER_DATABASE_URL and OPERATOR_DATABASE_URL) and prints DATABASE_URL (of
# the first database) as the last line of stdout. Idempotent.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"

dir="$repo_root/.stack/pg"
port=""
dbs=()

usage() {
    echo "usage: $0 [--dir DIR] [--port PORT] [--db NAME]..." >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dir) [ $# -ge 2 ] || usage; dir="$2"; shift 2 ;;
        --dir=*) dir="${1#--dir=}"; shift ;;
        --port) [ $# -ge 2 ] || usage; port="$2"; shift 2 ;;
        --port=*) port="${1#--port=}"; shift ;;
        --db) [ $# -ge 2 ] || usage; dbs+=("$2"); shift 2 ;;
        --db=*) dbs+=("${1#--db=}"); shift ;;
        -h|--help) usage ;;
        *) echo "pg-start.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[ ${#dbs[@]} -gt 0 ] || dbs=(ledgerline)
if [ -n "$port" ] && ! [[ "$port" =~ ^[0-9]+$ ]]; then
    echo "pg-start.sh: --port must be a number" >&2
    exit 2
fi
for db in "${dbs[@]}"; do
    if ! [[ "$db" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "pg-start.sh: database name must be an identifier ([A-Za-z_][A-Za-z0-9_]*): $db" >&2
        exit 2
    fi
done

# Newest installed server.
pgbin=""
for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -n); do
    [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] && pgbin="/usr/lib/postgresql/$v/bin"
done
if [ -z "$pgbin" ]; then
    echo "pg-start.sh: no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 1
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
key="$(printf '%s' "$dir" | sha1sum | cut -c1-12)"
sdir="$dir"   # where the server's own files live (see below)

# Run server commands as an unprivileged user when we are root.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    pguser=postgres
    if ! id -u "$pguser" >/dev/null 2>&1; then
        pguser=ledgerline-pg
        if ! id -u "$pguser" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$pguser"
        fi
    fi
    as_pg=(runuser -u "$pguser" --)
    chown "$pguser:" "$dir"
    # The server user must reach DIR: a checkout under /root (mode 700) is
    # not reachable, so the server's files then go to /var/tmp instead (DIR
    # keeps env and a pointer to them).
    if ! "${as_pg[@]}" test -w "$dir" -a -x "$dir"; then
        sdir="/var/tmp/ledgerline-pg-$key"
        echo "pg-start.sh: $pguser cannot reach $dir; keeping the cluster in $sdir" >&2
        mkdir -p "$sdir"
        chown "$pguser:" "$sdir"
    fi
    if [ -d "$sdir/data" ] && [ "$(stat -c %U "$sdir/data")" != "$pguser" ]; then
        chown -R "$pguser:" "$sdir/data"
    fi
fi
echo "$sdir" >"$dir/serverdir"
data="$sdir/data"
logfile="$sdir/postgres.log"
# Unix socket paths are limited to ~107 bytes.
sock="$sdir/socket"
[ ${#sock} -le 80 ] || sock="/tmp/ledgerline-pg-$key"

port_free() {
    # Free when nothing listens on it (ss) and nothing answers a connect.
    if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then
        return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        return 1
    fi
    return 0
}

running() {
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

if [ ! -f "$data/PG_VERSION" ]; then
    "${as_pg[@]}" "$pgbin/initdb" -D "$data" --auth=trust -U postgres \
        --encoding=UTF8 --no-locale >"$sdir/initdb.log" 2>&1 || {
        cat "$sdir/initdb.log" >&2
        echo "pg-start.sh: initdb failed" >&2
        exit 1
    }
fi
mkdir -p "$sock"
[ ${#as_pg[@]} -eq 0 ] || chown "$pguser:" "$sock"

if running; then
    # Already up: keep its port (from postmaster.pid, line 4).
    port="$(sed -n 4p "$data/postmaster.pid")"
else
    # A free port can be taken between the check and the bind (two stacks
    # starting at once): with an automatic port, move on and try again.
    auto=0
    if [ -z "$port" ]; then auto=1; port=55432; fi
    for attempt in $(seq 1 20); do
        if [ "$auto" -eq 1 ]; then
            while ! port_free "$port"; do
                port=$((port + 1))
                if [ "$port" -gt 65000 ]; then
                    echo "pg-start.sh: no free port found from 55432" >&2
                    exit 1
                fi
            done
        elif ! port_free "$port"; then
            echo "pg-start.sh: port $port is in use" >&2
            exit 1
        fi
        if "${as_pg[@]}" "$pgbin/pg_ctl" -D "$data" -l "$logfile" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$sock' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=2GB -c max_wal_size=8GB -c checkpoint_timeout=30min -c wal_buffers=64MB" \
            start >/dev/null; then
            break
        fi
        if [ "$auto" -eq 0 ] || [ "$attempt" -eq 20 ]; then
            tail -n 30 "$logfile" >&2 || true
            echo "pg-start.sh: the server did not start (log: $logfile)" >&2
            exit 1
        fi
        port=$((port + 1 + RANDOM % 16))
    done
fi

psql_admin() {
    "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

for db in "${dbs[@]}"; do
    exists="$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$db'")"
    if [ "$exists" != "1" ]; then
        psql_admin -c "CREATE DATABASE \"$db\"" >/dev/null
    fi
done

url_of() { echo "postgresql://postgres@127.0.0.1:$port/$1"; }

if [ -n "${BILLINGCTL:-}" ]; then
    if [ ! -x "$BILLINGCTL" ]; then
        echo "pg-start.sh: BILLINGCTL=$BILLINGCTL is not executable" >&2
        exit 1
    fi
    for db in "${dbs[@]}"; do
        DATABASE_URL="$(url_of "$db")" "$BILLINGCTL" db migrate >&2
    done
fi

# Passwords of the runtime roles, once the migration has created them.
roles_env=()
if [ "$(psql_admin -tA -c "SELECT count(*) FROM pg_roles WHERE rolname IN
        ('billing_owner', 'billing_worker', 'billing_operator')")" = "3" ]; then
    pwfile="$dir/role-passwords"
    if [ ! -s "$pwfile" ]; then
        ( umask 077
          for r in billing_owner billing_worker billing_operator; do
              echo "$r $(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
          done >"$pwfile.tmp.$$" )
        mv "$pwfile.tmp.$$" "$pwfile"
    fi
    while read -r role pw; do
        psql_admin -v role="$role" -v pw="$pw" <<'SQL' >/dev/null
ALTER ROLE :"role" PASSWORD :'pw';
SQL
        case "$role" in
            billing_worker) roles_env+=("WORKER_DATABASE_URL=postgresql://$role:$pw@127.0.0.1:$port/${dbs[0]}") ;;
            billing_operator) roles_env+=("OPERATOR_DATABASE_URL=postgresql://$role:$pw@127.0.0.1:$port/${dbs[0]}") ;;
        esac
    done <"$pwfile"
    roles_env+=("OWNER_DATABASE_URL=$(url_of "${dbs[0]}")")
fi

url="$(url_of "${dbs[0]}")"
tmp="$dir/env.tmp.$$"
{
    echo "PGPORT=$port"
    echo "PGHOST=127.0.0.1"
    echo "DATABASE_URL=$url"
    for e in "${roles_env[@]}"; do echo "$e"; done
} >"$tmp"
mv "$tmp" "$dir/env"
echo "$url"
