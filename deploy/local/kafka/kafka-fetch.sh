#!/usr/bin/env bash
# kafka-fetch.sh: resolves the Apache Kafka broker pinned in pom.xml (beside
# this script) and its runtime dependencies through Maven into a cache folder
# outside the work tree, and prints that folder. A second run finds it there
# and downloads nothing.
#
#   kafka-fetch.sh [--quiet]
#
# The folder is $KAFKA_LIBS_DIR, by default
# ${XDG_CACHE_HOME:-~/.cache}/ledgerline/kafka-<version>/libs; Maven's own
# cache (~/.m2) serves a later clone on the same machine (CI runs there).
# Needs java (17 or later) and mvn; exits 3 when either is missing, so a
# caller can skip rather than fail.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1

for tool in java mvn; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "kafka-fetch.sh: $tool is not installed (apt-get install openjdk-17-jre-headless maven)" >&2; exit 3; }
done
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
[ -n "$version" ] || { echo "kafka-fetch.sh: no kafka.version in $here/pom.xml" >&2; exit 1; }
libs=${KAFKA_LIBS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ledgerline/kafka-$version/libs}

# Complete once the marker is written (the last step), so a download that
# was interrupted is done again rather than half used.
if [ ! -f "$libs/.complete" ] || [ "$here/pom.xml" -nt "$libs/.complete" ]; then
  [ "$quiet" -eq 1 ] || echo "kafka-fetch.sh: resolving Apache Kafka $version into $libs" >&2
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$libs" >&2
  ls "$libs"/kafka_2.13-"$version".jar >/dev/null
  echo "$version" >"$libs/.complete"
fi
echo "$libs"
