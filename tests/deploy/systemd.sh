#!/usr/bin/env bash
# systemd.sh: `systemd-analyze verify` on every unit of deploy/systemd/
# (templates through an instance, e.g. billing-autopay-worker@1.service);
# any warning about a unit counts as a failure. There is a unit for every
# binary, a template for every worker kind, Restart=on-failure, an
# EnvironmentFile and a MemoryMax on every service, the ingester's metrics
# on a loopback admin listener, and each unit reads only the secrets it
# uses. Skipped (77) where systemd-analyze is not installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
units="$root/deploy/systemd"

expected=(billing-migrate.service billing-ingester.service billing-scheduler.service
          billing-invoicing-worker@.service billing-autopay-worker@.service
          billing-retry-worker@.service billing-dispute-worker@.service
          billing-notifier@.service ledgerline.target)
for u in "${expected[@]}"; do
  [ -f "$units/$u" ] || { echo "FAIL: $u missing" >&2; exit 1; }
done
for u in "$units"/*.service; do
  name=$(basename "$u")
  grep -q '^EnvironmentFile=/etc/ledgerline/ledgerline.env$' "$u" || { echo "FAIL: $name has no EnvironmentFile" >&2; exit 1; }
  grep -q '^NoNewPrivileges=yes$' "$u" || { echo "FAIL: $name is not hardened" >&2; exit 1; }
  grep -Eq '^MemoryMax=[0-9]+[KMG]$' "$u" || { echo "FAIL: $name has no MemoryMax" >&2; exit 1; }
  case "$name" in
    billing-migrate.service) grep -q '^Type=oneshot$' "$u" || { echo "FAIL: migrate is not oneshot" >&2; exit 1; } ;;
    *) grep -q '^Restart=on-failure$' "$u" || { echo "FAIL: $name has no Restart=on-failure" >&2; exit 1; } ;;
  esac
done
# Each unit reads only the secrets it uses (docs/OPERATIONS.md "Secrets per
# process"): the migration the owner's database URL, the scheduler and the
# workers billing_worker's, the workers that call Stripe the API key, the
# ingester the webhook secret and neither a database URL nor the API key;
# what a unit must not hold is unset even if a shared file sets it.
secrets_of() { grep -Eo '^EnvironmentFile=/etc/ledgerline/(database-[a-z]+|stripe-[a-z]+|smtp)\.env$' "$units/$1" |
  sed 's|.*/||' | sort | tr '\n' ' '; }
expect_secrets() { # unit "files..." "unset..."
  local got; got=$(secrets_of "$1")
  [ "$got" = "$2" ] || { echo "FAIL: $1 reads secrets '$got', expected '$2'" >&2; exit 1; }
  for v in $3; do
    grep -Eq "^UnsetEnvironment=.*\b$v\b" "$units/$1" || { echo "FAIL: $1 does not unset $v" >&2; exit 1; }
  done
}
expect_secrets billing-migrate.service "database-owner.env " "STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET"
expect_secrets billing-scheduler.service "database-worker.env " "STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET"
expect_secrets billing-invoicing-worker@.service "database-worker.env " "STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET"
for w in autopay retry dispute; do
  expect_secrets "billing-$w-worker@.service" "database-worker.env stripe-api.env " "STRIPE_WEBHOOK_SECRET"
done
expect_secrets billing-notifier@.service "database-worker.env smtp.env " "STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET"
expect_secrets billing-ingester.service "stripe-webhook.env " "DATABASE_URL STRIPE_SECRET_KEY"
echo "secrets per unit: as expected"
# Every worker template has the retry worker's sandboxing, line for line
# (DynamicUser= through UMask=), and ledgerline.target starts its instance 1.
hardening() { sed -n '/^DynamicUser=/,/^UMask=/p' "$units/$1"; }
ref=$(hardening billing-retry-worker@.service)
[ "$(wc -l <<<"$ref")" -ge 20 ] || { echo "FAIL: billing-retry-worker@.service lost its hardening block" >&2; exit 1; }
for t in billing-invoicing-worker@.service billing-autopay-worker@.service \
         billing-dispute-worker@.service billing-notifier@.service; do
  [ "$(hardening "$t")" = "$ref" ] || { echo "FAIL: $t is not sandboxed like billing-retry-worker@.service" >&2; exit 1; }
  grep -Eq "^Wants=.*\b${t/@./@1.}\b" "$units/ledgerline.target" ||
    { echo "FAIL: ledgerline.target does not start ${t/@./@1.}" >&2; exit 1; }
done
echo "worker sandboxing and ledgerline.target: as expected"

grep -Eq '^Environment=INGESTER_ADMIN_LISTEN=127\.0\.0\.1:[0-9]+$' "$units/billing-ingester.service" ||
  { echo "FAIL: billing-ingester.service serves /metrics on no admin listener" >&2; exit 1; }

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed: units not verified (skipped)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The binaries live in /usr/local/bin on a real host; verify checks that
# ExecStart is executable, so point it at stand-ins here.
mkdir "$tmp/bin"
for b in billingctl billing-ingester billing-scheduler billing-invoicing-worker \
         billing-autopay-worker billing-retry-worker billing-dispute-worker billing-notifier; do
  ln -s /bin/true "$tmp/bin/$b"
done
cp "$units"/* "$tmp/"
sed -i "s|/usr/local/bin/|$tmp/bin/|g" "$tmp"/*.service
cd "$tmp"
status=0
for u in "${expected[@]}"; do
  inst=${u/@./@1.}
  out=$(systemd-analyze verify "$inst" 2>&1) || status=1
  # Only what concerns our units: the host's own units may warn too.
  ours=$(grep -E "billing-|ledgerline" <<<"$out" || true)
  if [ -n "$ours" ]; then
    echo "FAIL: $inst:" >&2
    echo "$ours" >&2
    status=1
  else
    echo "verified $inst"
  fi
done
[ "$status" -eq 0 ] || exit 1
echo "systemd: 1 passed, 0 failed"
