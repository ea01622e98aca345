#!/usr/bin/env bash
# run-stack.sh: the README's local-stack command. Installs what is missing,
# builds, starts PostgreSQL and the dev broker (migrated), seeds the demo
# firm and prints how to use the stack. Stop it with deploy/local/stack-down.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
dir="$root/.stack/local"

"$here/deps.sh"
cmake -S "$root" -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
"$here/stack-up.sh" --dir "$dir" --build build/release >/dev/null
# shellcheck disable=SC1091
. "$dir/env"
psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -f "$here/demo.sql"

cat <<MSG
ledgerline local stack is running (state in $dir).

  PostgreSQL   $DATABASE_URL
  Kafka        $KAFKA_BROKERS   (billing-dev-broker, topics billing.*)

Use it:
  set -a; . $dir/env; set +a
  build/release/workers/billingctl/billingctl db migrate
  psql "\$DATABASE_URL" -c 'select id, company_name from billing.clients'

Stop it:
  deploy/local/stack-down.sh
MSG
