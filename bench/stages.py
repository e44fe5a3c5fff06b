#!/usr/bin/env python3
"""Where mailtap's time goes, by stage and by thread, from a perf profile
with call chains.

    perf record -e cpu-clock -F 4000 --call-graph dwarf,16384 -o perf.data \\
        mailtap -q --no-summary --json -r capture.pcap >/dev/null
    perf script -i perf.data -F comm,tid,ip,sym,dso | \\
        bench/stages.py --binary build/mailtap --freq 4000

Each sample is given to the stage of the first frame, walking from the
sampled function towards main, that says what the work is for:

- mailtap's own functions by their source file (`nm -l` on the binary):
  reassembly/ is reassembly, dissect/hash.c is SHA-256, and so on (FILES);
- the libraries and the kernel by name (NAMES): Nettle's SHA-256, GMime,
  the allocator, the kernel's copy out of the page cache, the clearing of
  fresh pages, the futex calls of the two threads' hand-over.

Frames that say nothing by themselves (memchr, strlen, memcpy, GLib's
helpers, inlined functions, the kernel's generic paths) are walked past,
so a memchr is charged to whoever called it.  bench/profile.sh runs this;
tests/bench/test_stages.py checks the classification on made-up chains.
"""

import argparse
import collections
import os
import re
import subprocess
import sys

# mailtap's own source files, by path prefix; the first that matches wins.
FILES = [
    ("capture/", "reading the capture"),
    ("reassembly/", "TCP reassembly"),
    ("dissect/hash.c", "SHA-256"),
    ("dissect/b64.c", "Base64"),
    ("dissect/mime", "MIME"),
    ("dissect/message.c", "message buffers"),
    ("dissect/defer.c", "hand-over between threads"),
    ("cli/pipeline.c", "hand-over between threads"),
    ("output/records.c", "hand-over between threads"),
    ("cli/workers.c", "workers (shard, ring)"),
    ("cli/heap.c", "allocation"),
    ("dissect/", "dissectors"),
    ("output/", "output"),
]

# Libraries' and the kernel's functions, by name (a regular expression,
# matched from the start); walked in order, the first that matches wins.
NAMES = [
    (r"clear_page|folio_zero|asm_exc_page_fault|exc_page_fault|__x64_sys_madvise"
     r"|__x64_sys_munmap|__x64_sys_mmap|__x64_sys_mremap|__x64_sys_brk|zap_|unmap_|tlb_",
     "fresh pages (kernel)"),
    (r"__x64_sys_pread64|__x64_sys_read$|filemap_read|_copy_to_iter", "reading the capture"),
    (r"__x64_sys_write|ksys_write|shmem_", "output"),
    (r"__x64_sys_futex|futex_|do_futex", "hand-over between threads"),
    (r"__x64_sys_execve|_dl_|dl_main|_dl_start|do_lookup_x", "start-up"),
    (r"_nettle_sha256|nettle_sha256|ni_blocks", "SHA-256"),
    (r"g_mime_|_g_mime_|internet_address", "MIME"),
    (r"mi_|_mi_|malloc$|__libc_malloc|calloc$|__libc_calloc|realloc$|__libc_realloc|free$"
     r"|__libc_free|cfree|g_malloc|g_free|g_slice_|g_realloc|g_try_malloc|operator new"
     r"|operator delete", "allocation"),
    (r"pcap_", "reading the capture"),
]
NAMES_RE = [(re.compile(p), s) for p, s in NAMES]

# Every stage, in the order of the table (mostly the order of the pipeline).
STAGES = [
    "reading the capture", "TCP reassembly", "dissectors", "message buffers",
    "fresh pages (kernel)", "hand-over between threads", "workers (shard, ring)", "MIME", "Base64",
    "SHA-256", "output", "allocation", "start-up", "other (kernel)", "other",
]

# How each thread is named in the table (g_thread_new's names).
THREADS = {"mailtap": "reading thread", "mailtap-msg": "message thread"}


def thread_label(comm):
    """A thread's column heading; the workers keep their own names."""
    return THREADS.get(comm, comm)


def file_stage(path):
    """The stage of a mailtap source file (relative to the tree), or None."""
    for prefix, stage in FILES:
        if path.startswith(prefix):
            return stage
    return None


def classify(frames, symfile):
    """The stage of one sample.  frames: (symbol, dso) pairs from the
    sampled function outwards; symfile: mailtap's symbol -> source file
    (relative path).  Kernel frames that match nothing make the sample
    "other (kernel)" if nothing further out names it either."""
    kernel = False
    for sym, dso in frames:
        sym = sym.split("+")[0]
        if sym in symfile:
            st = file_stage(symfile[sym])
            if st:
                return st
        for rx, st in NAMES_RE:
            if rx.match(sym):
                return st
        if "kernel" in dso:
            kernel = True
    return "other (kernel)" if kernel else "other"


def parse_script(lines):
    """perf script output (-F comm,tid,ip,sym,dso with call chains) as
    (comm, [(symbol, dso), ...]) per sample."""
    comm, frames = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line[0].isspace():
            if comm is not None:
                yield comm, frames
            comm, frames = line.split()[0], []
            continue
        # "\t    addr sym (dso)"; sym may hold spaces, "(inlined)" is a dso
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
        if m:
            frames.append((m.group(1), m.group(2)))
        else:
            m = re.match(r"\s*[0-9a-f]+\s+(.*)$", line)
            if m:
                frames.append((m.group(1), ""))
    if comm is not None:
        yield comm, frames


def symbol_files(binary, root):
    """mailtap's function -> its source file under root, from `nm -l`."""
    out = subprocess.run(["nm", "-l", binary], capture_output=True, text=True).stdout
    prefix = os.path.realpath(root) + os.sep
    files = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[1] not in "tTwW":
            continue
        path = parts[3].rsplit(":", 1)[0]
        if path.startswith(prefix):
            files[parts[2]] = path[len(prefix):]
        else:  # built elsewhere (bench/build/src): the tree's own layout
            for top in ("capture/", "reassembly/", "dissect/", "output/", "cli/", "plugin/"):
                k = path.find(os.sep + top)
                if k >= 0:
                    files[parts[2]] = path[k + 1:]
                    break
    return files


def tally(samples, symfile):
    """{thread: Counter(stage -> samples)} and the threads in the order
    they first sampled."""
    counts = collections.OrderedDict()
    for comm, frames in samples:
        t = thread_label(comm)
        counts.setdefault(t, collections.Counter())[classify(frames, symfile)] += 1
    return counts


def table(counts, freq):
    """The Markdown table: a row per stage that has samples, a column per
    thread (share of all samples and milliseconds), then all threads."""
    threads = list(counts)
    total = sum(sum(c.values()) for c in counts.values())
    if total == 0:
        return "no samples\n"
    ms = 1000.0 / freq if freq else 0

    def cell(n):
        s = "%.1f %%" % (100.0 * n / total)
        return s + (" (%d ms)" % round(n * ms) if ms else "")

    head = "| stage | " + " | ".join(threads) + " | all |\n"
    head += "|---" + "|---:" * (len(threads) + 1) + "|\n"
    rows = []
    for st in STAGES:
        per = [counts[t][st] for t in threads]
        if sum(per) == 0:
            continue
        rows.append("| %s | %s | %s |\n" % (st, " | ".join(cell(n) for n in per), cell(sum(per))))
    sums = [sum(counts[t].values()) for t in threads]
    rows.append("| **all** | %s | %s |\n" % (" | ".join(cell(n) for n in sums), cell(total)))
    return head + "".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="the mailtap that was profiled")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="the source tree it was built from (default: this one)")
    ap.add_argument("--freq", type=float, default=0, help="perf's sampling rate, for milliseconds")
    ap.add_argument("script", nargs="?", help="perf script's output (default: standard input)")
    a = ap.parse_args()
    symfile = symbol_files(a.binary, a.root)
    if not symfile:
        sys.exit("stages: no source files for %s's functions (built without -g?)" % a.binary)
    f = open(a.script, encoding="utf-8", errors="replace") if a.script else sys.stdin
    sys.stdout.write(table(tally(parse_script(f), symfile), a.freq))


if __name__ == "__main__":
    main()
