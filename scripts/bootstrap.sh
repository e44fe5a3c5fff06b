#!/usr/bin/env bash
# Set up a Debian 12 machine for mailtap, build it, and either run it on a
# bundled sample (demo) or run the whole test suite (test).
#   scripts/bootstrap.sh demo   install what is missing, build, analyze samples/smtp-auth-plain.pcap
#   scripts/bootstrap.sh test   install what is missing, build (warnings as errors), run ctest,
#                               then build and run the suite again under ASan+UBSan, then
#                               the two-thread pipeline's test under ThreadSanitizer, then
#                               run each fuzz harness for 30 s (MAILTAP_FUZZ_SECONDS)
# Run as root (or with sudo) so missing Debian packages can be installed.
set -euo pipefail

mode=${1:-demo}
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# the engine and the command; wireshark-dev for the plugin (optional in the build)
build_pkgs=(build-essential cmake pkg-config libpcap-dev libglib2.0-dev libgmime-3.0-dev libmimalloc-dev
            nettle-dev zlib1g-dev wireshark-dev libwireshark-dev)
# the tests: tcpflow (conformance), tshark (plugin), real servers and clients in
# network namespaces (live capture), setpriv (util-linux)
test_pkgs=(python3 tcpdump tcpflow tshark iproute2 dovecot-imapd dovecot-pop3d
           python3-aiosmtpd swaks openssl util-linux chromium fonts-dejavu-core
           clang libclang-rt-14-dev)

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "bootstrap: installing ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: need root to install packages (run with sudo)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive # tshark asks a debconf question otherwise
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_build() { # dir, extra cmake args... [--target T]
    local dir=$1 target=()
    shift
    local args=()
    while [ $# -gt 0 ]; do
        if [ "$1" = --target ]; then
            target=(--target "$2")
            shift 2
        else
            args+=("$1")
            shift
        fi
    done
    cmake -S "$top" -B "$dir" "${args[@]}" >/dev/null
    cmake --build "$dir" -j "$jobs" "${target[@]}"
}

case "$mode" in
demo)
    install_missing "${build_pkgs[@]}"
    configure_build "$top/build"
    "$top/build/mailtap" -r "$top/samples/smtp-auth-plain.pcap"
    ;;
test)
    install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
    configure_build "$top/build" -DMAILTAP_WERROR=ON
    (cd "$top/build" && ctest --output-on-failure -j "$jobs")
    # the same suite once more under AddressSanitizer and UndefinedBehaviorSanitizer
    # (the Wireshark plugin is left out there: an ASan module cannot load into
    # Debian's uninstrumented tshark; the first run tests it)
    # (with the workers' rings made tiny, as for ThreadSanitizer below, so
    # that every capture of the --workers tests goes round them)
    configure_build "$top/build-asan" -DMAILTAP_WERROR=ON -DMAILTAP_SANITIZE=ON \
        -DCMAKE_BUILD_TYPE=Debug -DMAILTAP_PLUGIN=OFF -DMAILTAP_SMALL_RING=ON
    (cd "$top/build-asan" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$jobs")
    # the two-thread pipeline and --workers under ThreadSanitizer: their
    # output test, with a report making mailtap exit 66 and so differ from
    # the one-thread run; the workers' rings made tiny, so that every packet
    # goes round them and the reading thread waits for room all the time
    configure_build "$top/build-tsan" -DMAILTAP_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DMAILTAP_PLUGIN=OFF -DMAILTAP_SMALL_RING=ON --target mailtap
    # (G_SLICE=always-malloc: GLib 2.74's slice allocator hands memory
    # between threads under a GMutex, which ThreadSanitizer cannot see)
    G_SLICE=always-malloc TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$top/tests/cli/tsan.supp" \
        python3 "$top/tests/cli/test_pipeline.py" --mailtap "$top/build-tsan/mailtap" \
        --samples "$top/samples" --corpus "$top/../shared/corpus"
    # and each libFuzzer harness for a bounded time (clang; skipped without it)
    "$top/tests/fuzz/run_fuzz.sh" -t "${MAILTAP_FUZZ_SECONDS:-30}" -o "$top/build-fuzz-out"
    ;;
*)
    echo "usage: $0 demo|test" >&2
    exit 1
    ;;
esac
