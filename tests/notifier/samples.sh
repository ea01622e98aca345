#!/usr/bin/env bash
# samples.sh: regenerates docs/samples/*.png (docs/INVOICES.md "Samples"):
# runs test_statement against the stack in the current environment with
# LL_SAMPLES_DIR set, so that its seeded demo client's invoice, credit note,
# reminder letter and statement are written as PDFs, then turns the first
# page of each into a PNG at 60 dpi with pdftoppm (poppler-utils).
#
#   set -a; . DIR/env; set +a; tests/notifier/samples.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
out="$root/docs/samples"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
LL_SAMPLES_DIR="$tmp" ctest --test-dir "$build" -R '^test_statement$' --output-on-failure >/dev/null
for name in invoice credit-note reminder statement; do
  pdftoppm -r 60 -f 1 -l 1 -singlefile -png "$tmp/$name.pdf" "$out/$name"
  echo "wrote docs/samples/$name.png ($(stat -c %s "$out/$name.png") bytes)"
done
