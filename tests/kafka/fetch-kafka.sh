#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Obtains Apache Kafka (org.apache.kafka:kafka_2.13 and its runtime
# dependencies) from Maven Central into a cache directory, and prints the
# directory of its jars:
#   ${HOOKD_KAFKA_HOME:-$HOME/.cache/acme-hookd/kafka}/<version>/lib
# Quick and offline when the cache is complete. HOOKD_KAFKA_VERSION
# overrides the version pinned in pom.xml.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pinned=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
version=${HOOKD_KAFKA_VERSION:-$pinned}
home=${HOOKD_KAFKA_HOME:-$HOME/.cache/acme-hookd/kafka}
dest=$home/$version
lib=$dest/lib

# The cache is complete when the stamp exists and was made from this pom:
# a changed pom (another log binding, say) fetches again.
if [ -f "$dest/.complete" ] && cmp -s "$here/pom.xml" "$dest/pom.xml" \
   && [ -f "$lib/kafka_2.13-$version.jar" ]; then
  echo "$lib"
  exit 0
fi

for tool in mvn java; do
  if ! command -v "$tool" >/dev/null; then
    echo "fetch-kafka: '$tool' not found; run scripts/setup-deps.sh --tests" >&2
    exit 1
  fi
done

mkdir -p "$dest"
# Collect into a fresh directory and move it in place at the end, so an
# interrupted download never looks like a complete cache.
tmp=$(mktemp -d "$dest/lib.partial.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-kafka: fetching Apache Kafka $version from Maven Central into $dest" >&2
if ! mvn -q -B -f "$here/pom.xml" -Dkafka.version="$version" \
     dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
  echo "fetch-kafka: mvn could not fetch org.apache.kafka:kafka_2.13:$version" >&2
  exit 1
fi
if [ ! -f "$tmp/kafka_2.13-$version.jar" ]; then
  echo "fetch-kafka: kafka_2.13-$version.jar missing after the download" >&2
  exit 1
fi
rm -rf "$lib"
mv "$tmp" "$lib"
trap - EXIT
cp "$here/pom.xml" "$dest/pom.xml"
touch "$dest/.complete"
echo "$lib"
