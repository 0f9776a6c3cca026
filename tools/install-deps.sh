#!/usr/bin/env bash
# Installs every Debian package Mephisto needs to build and test. Idempotent and non-interactive: packages
# already present are left alone, and apt-get runs only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3
  librdkafka-dev libboost-context-dev librocksdb-dev
  libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev librapidcheck-dev
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  # The real Kafka broker for tests runs on the JVM; its jars come from Maven Central.
  openjdk-17-jre-headless maven
  # An outside Kafka client: tools/standalone-example feeds and reads a user's app on real Kafka with it.
  kcat
  # The HTML run report's test renders the page in headless Chromium (tests/scenario/report_test.cpp).
  chromium
)

missing=()
for p in "${packages[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# A JDK from another source (e.g. a preinstalled Temurin) satisfies the broker as well as Debian's.
if command -v java >/dev/null 2>&1; then
  missing=("${missing[@]/openjdk-17-jre-headless/}")
fi
if command -v mvn >/dev/null 2>&1; then
  missing=("${missing[@]/maven/}")
fi
read -r -a missing <<<"${missing[*]:-}"

if ((${#missing[@]} == 0)); then
  echo "install-deps: all packages present" >&2
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
