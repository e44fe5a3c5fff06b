#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time (CI: 60 s each).
#
#   tests/fuzz/run_fuzz.sh [-t SECONDS] [-k] [-s SUPP] [-b BUILD_DIR] [-o OUT_DIR] [HARNESS ...]
#
# -t  seconds per harness (default 60)
# -s  a UBSan suppressions file (for a build with MAILTAP_FUZZ_EXTRA_FLAGS
#     making that check recoverable: see fuzz.cmake)
# -k  keep going after a crash (libFuzzer -fork=1 -ignore_crashes=1 ...; one
#     child process at a time) to collect every distinct finding of a long run
# -b  a build directory configured with CC=clang -DMAILTAP_FUZZ=ON (its
#     harnesses are brought up to date first); without it one is configured
#     and built under OUT_DIR
# -o  where the grown corpora, crash artifacts and logs go (default: a
#     temporary directory, removed at the end unless something was found)
# HARNESS: capture dissect sasl mime imap_tok output (default: every one built)
#
# The committed corpus/<h> and regressions/<h> are read, never written: new
# inputs go to OUT_DIR/corpus/<h>.  Skips cleanly (exit 0, a "skipped"
# line) when clang or libFuzzer is missing.  Exit 1 when a harness found a
# crash, a leak or a timeout; the artifact is in OUT_DIR/artifacts/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=60
build=
out=
keep_going=()
supp=
while getopts "t:ks:b:o:h" opt; do
    case $opt in
    t) secs=$OPTARG ;;
    k) keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1) ;;
    s) supp=$(cd "$(dirname "$OPTARG")" && pwd)/$(basename "$OPTARG") ;;
    b) build=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,20p' "$0"; exit 1 ;;
    esac
done
shift $((OPTIND - 1))

skip() {
    echo "run_fuzz: skipped: $*"
    exit 0
}

keep_out=1
if [ -z "$out" ]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/mailtap-fuzz.XXXXXX")
    keep_out=0
fi
mkdir -p "$out"

if [ -z "$build" ]; then
    command -v clang >/dev/null 2>&1 || skip "clang not found (apt-get install clang libclang-rt-14-dev)"
    command -v cmake >/dev/null 2>&1 || skip "cmake not found"
    build=$out/build
    if ! CC=clang cmake -S "$top" -B "$build" -DMAILTAP_FUZZ=ON -DMAILTAP_PLUGIN=OFF \
        >"$out/configure.log" 2>&1; then
        cat "$out/configure.log" >&2
        echo "run_fuzz: configure failed" >&2
        exit 1
    fi
    grep -q "MAILTAP_LIBFUZZER_WORKS:INTERNAL=1" "$build/CMakeCache.txt" ||
        skip "clang cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev)"
fi
# built here or given with -b: either way the harnesses must be of the
# sources as they are now (a -b directory left from an earlier run would
# otherwise fuzz the code of then)
if [ -f "$build/CMakeCache.txt" ]; then
    targets=()
    for h in capture dissect sasl mime imap_tok output; do
        [ -f "$here/fuzz_$h.c" ] && targets+=("fuzz_$h")
    done
    cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" \
        >"$out/build.log" 2>&1 || {
        # imap_tok is only a target once dissect/imap_tok.h exists
        cmake --build "$build" -j 2 >"$out/build.log" 2>&1 || {
            tail -30 "$out/build.log" >&2
            echo "run_fuzz: build failed" >&2
            exit 1
        }
    }
fi

harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
    for h in capture dissect sasl mime imap_tok output; do
        [ -x "$build/tests/fuzz_$h" ] && harnesses+=("$h")
    done
fi
[ ${#harnesses[@]} -gt 0 ] || skip "no libFuzzer binaries in $build/tests"

max_len() {
    case $1 in
    capture | mime) echo 65536 ;;
    dissect | output) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

failed=0
npass=0
nfail=0
printf '%-9s %8s %12s %8s  %s\n' harness seconds execs corpus result >"$out/summary.txt"
for h in "${harnesses[@]}"; do
    bin=$build/tests/fuzz_$h
    if [ ! -x "$bin" ]; then
        echo "run_fuzz: $bin missing" >&2
        failed=1
        nfail=$((nfail + 1))
        continue
    fi
    mkdir -p "$out/corpus/$h" "$out/artifacts"
    # output reads dissect's input format: its seeds and dictionary
    in=$h
    [ "$h" = output ] && in=dissect
    dict=()
    [ -f "$here/$in.dict" ] && dict=(-dict="$here/$in.dict")
    seeds=()
    for d in "$here/corpus/$in" "$here/regressions/$h"; do
        [ -d "$d" ] && seeds+=("$d")
    done
    echo "run_fuzz: $h for ${secs}s" >&2
    set +e
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1${supp:+:suppressions=$supp}} \
        "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
        -max_len="$(max_len "$h")" -print_final_stats=1 "${keep_going[@]}" "${dict[@]}" \
        -artifact_prefix="$out/artifacts/$h-" "$out/corpus/$h" "${seeds[@]}" \
        >"$out/$h.log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$h.log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): cov.*/\1/p' "$out/$h.log" | tail -1)
    ncorp=$(find "$out/corpus/$h" -type f | wc -l)
    if [ $rc -eq 0 ] && ! ls "$out/artifacts" | grep -q "^$h-"; then
        result=ok
        npass=$((npass + 1))
    else
        nfail=$((nfail + 1))
        result="FOUND (exit $rc): $(ls "$out/artifacts" | grep "^$h-" | tr '\n' ' ')"
        failed=1
        grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error)" "$out/$h.log" | head -5 >&2 || true
    fi
    printf '%-9s %8s %12s %8s  %s\n' "$h" "$secs" "${execs:-?}" "$ncorp" "$result" \
        >>"$out/summary.txt"
done
cat "$out/summary.txt"
echo "run_fuzz: $npass passed, $nfail failed"
if [ $failed -ne 0 ]; then
    echo "run_fuzz: findings kept in $out (minimize with: BIN -minimize_crash=1 -runs=10000 ARTIFACT)"
    exit 1
fi
[ $keep_out -eq 1 ] || rm -rf "$out"
