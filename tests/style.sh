#!/usr/bin/env bash
# tests/style.sh: the C style is kept, not only configured. Every tracked
# .c and .h file must be exactly what clang-format makes of it with the
# repository's .clang-format (Debian's clang-format, installed by
# deploy/local/deps.sh). Prints each file that differs and how to fix it;
# exits 1 if any does.
#
#   tests/style.sh          check
#   tests/style.sh --fix    reformat the files in place
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v clang-format >/dev/null || { echo "style.sh: clang-format is not installed (deploy/local/deps.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format --style=file -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --style=file "$f" | cmp -s - "$f"; then
    echo "style.sh: $f is not formatted" >&2
    bad=$((bad + 1))
  fi
done
# sql/queries/: each file says what it is on its first line ("-- NAME.sql
# (its caller): ...") and is used by the code (as llq_NAME).
for q in sql/queries/*.sql; do
  [ -e "$q" ] || continue
  n=$(basename "$q" .sql)
  if ! head -1 "$q" | grep -q "^-- $n\.sql "; then
    echo "style.sh: $q does not start with '-- $n.sql (caller): what it does'" >&2
    bad=$((bad + 1))
  fi
  if [ "${n#_}" != "$n" ]; then
    # a fragment: included by a query with psql's \ir (cmake/embed_queries.cmake)
    if ! grep -qx "\\\\ir $n\.sql" sql/queries/*.sql; then
      echo "style.sh: $q is a fragment no query includes (a line \\ir $n.sql)" >&2
      bad=$((bad + 1))
    fi
  elif ! grep -rqw "llq_$n" common workers include; then
    echo "style.sh: $q is not used (no llq_$n in common/, workers/ or include/)" >&2
    bad=$((bad + 1))
  fi
done
if [ "$bad" -gt 0 ]; then
  echo "style.sh: $bad of ${#files[@]} files or queries need attention; run tests/style.sh --fix for the C format" >&2
  exit 1
fi
echo "style.sh: ${#files[@]} files formatted"
