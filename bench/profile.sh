#!/bin/sh
# Where mailtap's time goes, on a mixed capture made by bench/gen.py.
#
#   bench/profile.sh [--mailtap PATH] [--size 20M] [--perf-size 250M]
#
# 1. valgrind --tool=callgrind on a small mixed capture (default 20 MB):
#    instruction counts, exact and repeatable on a noisy shared machine.
# 2. perf record -e cpu-clock (flat: the libraries have no frame pointers) on the full mixed capture (default 250 MB), when
#    perf works here (virtual machines often have no hardware counters, so
#    the timer event is used).
# 3. perf record with call chains, the default mode and --workers 1, its
#    samples added up by stage and by thread (bench/stages.py).
# Reports go to bench/build/profile/: callgrind.txt (inclusive and
# exclusive), perf.txt, stages.md.  Needs valgrind and linux-perf (Debian).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mailtap=$root/build/mailtap
size=20M
perf_size=250M
while [ $# -gt 0 ]; do
    case $1 in
        --mailtap) mailtap=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --perf-size) perf_size=$2; shift 2 ;;
        *) echo "usage: $0 [--mailtap PATH] [--size SIZE] [--perf-size SIZE]" >&2; exit 1 ;;
    esac
done
out=$here/build/profile
mkdir -p "$out"
python3 "$here/gen.py" mixed --size "$size"
small=$here/data/mixed-$size.pcap

if command -v valgrind >/dev/null; then
    echo "profile: callgrind on $small" >&2
    rm -f "$out"/callgrind.out.*
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.mailtap" \
        "$mailtap" -q --no-summary --json -r "$small" >/dev/null 2>"$out/callgrind.log"
    {
        echo "# callgrind_annotate, exclusive (self) cost"
        callgrind_annotate "$out/callgrind.out.mailtap" 2>/dev/null | head -60
        echo
        echo "# callgrind_annotate --inclusive=yes"
        callgrind_annotate --inclusive=yes "$out/callgrind.out.mailtap" 2>/dev/null | head -80
    } >"$out/callgrind.txt"
    echo "profile: wrote $out/callgrind.txt" >&2
else
    echo "profile: valgrind is not installed (apt-get install valgrind)" >&2
fi

if command -v perf >/dev/null && perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
    python3 "$here/gen.py" mixed --size "$perf_size"
    big=$here/data/mixed-$perf_size.pcap
    echo "profile: perf record on $big" >&2
    perf record -e cpu-clock -F 2000 -o "$out/perf.data" \
        "$mailtap" -q --no-summary --json -r "$big" >/dev/null 2>"$out/perf.log"
    {
        echo "# perf report --sort dso (share of samples per library)"
        perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
            | grep '%' | grep -v '^#' | head -15
        echo
        echo "# perf report --sort symbol"
        perf report -i "$out/perf.data" --no-children --sort symbol,dso --stdio -g none 2>/dev/null \
            | grep '%' | grep -v '^#' | head -50
    } >"$out/perf.txt"
    echo "profile: wrote $out/perf.txt" >&2
    # By stage and thread (bench/stages.py): call chains unwound from the
    # stack (the libraries have no frame pointers), the default mode and
    # one thread, so that the hand-over between the threads shows.
    : >"$out/stages.md"
    for mode in default "--workers 1"; do
        extra=
        [ "$mode" = default ] || extra=$mode
        # shellcheck disable=SC2086
        if perf record -e cpu-clock -F 4000 --call-graph dwarf,16384 -o "$out/perf-stages.data" \
            "$mailtap" -q --no-summary --json $extra -r "$big" >/dev/null 2>>"$out/perf.log"; then
            {
                echo "## mailtap --json $mode on $(basename "$big") (perf, 4 kHz, samples by stage)"
                echo
                perf script -i "$out/perf-stages.data" -F comm,tid,ip,sym,dso 2>/dev/null \
                    | python3 "$here/stages.py" --binary "$mailtap" --root "$root" --freq 4000
                echo
            } >>"$out/stages.md"
        fi
    done
    rm -f "$out/perf-stages.data"
    echo "profile: wrote $out/stages.md" >&2
else
    echo "profile: perf record does not work here (linux-perf, perf_event_paranoid)" >&2
fi
