#!/bin/sh
# Every message of every sample capture (and every attached message),
# extracted by mailtap -x, through both MIME paths: test_mime_fast --dir
# fails on the first field where the fast path and GMime differ.
#   mime_fast_samples.sh MAILTAP TEST_MIME_FAST SAMPLES_DIR
set -eu
mailtap=$1 tester=$2 samples=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
set --
for f in "$samples"/*.pcap; do set -- "$@" -r "$f"; done
"$mailtap" -q --no-summary "$@" -x "$dir" >/dev/null
exec "$tester" --dir "$dir" --verbose
