#!/usr/bin/env bash
# deps.sh: installs the Debian packages ledgerline needs to build, test and
# run its local stack, when any is missing. apt-get as root, else via sudo.
# docker-compose (with python3-yaml) only validates docker-compose.yml in
# the `deploy` tests; no Docker daemon is needed or started. Java and Maven
# run the real Apache Kafka cluster (deploy/local/kafka/, the kafka_real
# tests); the broker itself comes from Maven on first use.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  librdkafka-dev libpq-dev libjansson-dev libcurl4-openssl-dev libssl-dev
  libmicrohttpd-dev libcmocka-dev
  postgresql postgresql-client openssl curl procps iproute2
  clang libclang-rt-14-dev
  # tests/style.sh: the C style is checked, not only configured.
  clang-format
  docker-compose python3-yaml
  openjdk-17-jre-headless maven
  # billing-notifier: PDF rendering (cairo + pango), its fonts (DejaVu for
  # Latin, Greek, Cyrillic, Hebrew, Arabic; WenQuanYi Micro Hei for CJK, 5 MB
  # installed against fonts-noto-cjk's 91 MB), poppler-utils for the tests
  # (pdftotext, pdfinfo, pdftoppm).
  libcairo2-dev libpango1.0-dev fonts-dejavu-core fonts-wqy-microhei poppler-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The postgresql package would start a system-wide cluster; we run our own.
if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
