#!/bin/sh
# roles.sh: the database roles of a compose deployment (docker-compose.yml,
# one-shot service db-roles), run by the cluster's superuser before
# `billingctl db migrate`:
#   - billing_owner, billing_worker, billing_operator are created when absent
#     (LOGIN, nothing else: the attributes sql/010_roles.sql gives them; the
#     migration then leaves them alone and grants by its policy);
#   - each gets its password from BILLING_OWNER_PASSWORD,
#     BILLING_WORKER_PASSWORD, BILLING_OPERATOR_PASSWORD (run again after
#     changing one: that is the rotation);
#   - billing_owner owns the database (PGDATABASE), so it can create the
#     schema and migrate it.
# Connection: PGHOST, PGUSER, PGPASSWORD, PGDATABASE (libpq's). A password
# that is empty, shorter than 16 or not letters and digits stops it (exit 2,
# the variable named, never its value).
set -eu
for var in BILLING_OWNER_PASSWORD BILLING_WORKER_PASSWORD BILLING_OPERATOR_PASSWORD; do
  eval "value=\${$var:-}"
  case "$value" in
    *[!A-Za-z0-9]*|'') ok=0 ;;
    *) [ "${#value}" -ge 16 ] && ok=1 || ok=0 ;;
  esac
  if [ "$ok" -ne 1 ]; then
    echo "roles.sh: configuration error: $var must be at least 16 letters and digits (value not shown)" >&2
    exit 2
  fi
done
[ "$BILLING_OWNER_PASSWORD" != "$BILLING_WORKER_PASSWORD" ] &&
  [ "$BILLING_OWNER_PASSWORD" != "$BILLING_OPERATOR_PASSWORD" ] &&
  [ "$BILLING_WORKER_PASSWORD" != "$BILLING_OPERATOR_PASSWORD" ] || {
  echo "roles.sh: configuration error: BILLING_OWNER_PASSWORD, BILLING_WORKER_PASSWORD and BILLING_OPERATOR_PASSWORD must differ" >&2
  exit 2
}
psql -X -q -v ON_ERROR_STOP=1 \
  -v owner_pw="$BILLING_OWNER_PASSWORD" -v worker_pw="$BILLING_WORKER_PASSWORD" \
  -v operator_pw="$BILLING_OPERATOR_PASSWORD" -v db="${PGDATABASE:-billing}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', r)
  FROM unnest(ARRAY['billing_owner', 'billing_worker', 'billing_operator']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
\gexec
ALTER ROLE billing_owner PASSWORD :'owner_pw';
ALTER ROLE billing_worker PASSWORD :'worker_pw';
ALTER ROLE billing_operator PASSWORD :'operator_pw';
ALTER DATABASE :"db" OWNER TO billing_owner;
SQL
echo "roles.sh: billing_owner, billing_worker, billing_operator ready; billing_owner owns ${PGDATABASE:-billing}"
