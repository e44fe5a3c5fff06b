#!/bin/sh
# Every message of every capture under the given directories (and every
# attached message), extracted by mailtap -x, through both MIME paths:
# test_mime_fast --dir fails on the first field where the fast path and
# GMime's full parse differ.
#   mime_fast_samples.sh MAILTAP TEST_MIME_FAST DIR [DIR ...]
# Prints "SKIP: ..." and exits 0 when no directory exists (the conformance
# corpus is optional).
set -eu
mailtap=$1 tester=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for dir in "$@"; do
    [ -d "$dir" ] || continue
    for f in $(find "$dir" -type f \( -name '*.pcap' -o -name '*.pcapng' \) | sort); do
        n=$((n + 1))
        mkdir "$out/$n"
        # damaged captures exit 2 after analyzing what they hold: keep that
        "$mailtap" -q --no-summary -r "$f" -x "$out/$n" >/dev/null 2>&1 || true
    done
done
if [ "$n" -eq 0 ]; then
    echo "SKIP: no captures in $*"
    exit 0
fi
echo "$n captures"
exec "$tester" --dir "$out" --verbose
