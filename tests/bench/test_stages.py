#!/usr/bin/env python3
"""bench/stages.py, which turns a perf profile with call chains into the
table of bench/README.md's "Where the time goes": each sample charged to
the stage of the first frame that names one, walking outwards.

- classify on made-up chains: mailtap's functions by their source file,
  the libraries and the kernel by name, memchr and inlined helpers walked
  past to their caller, the kernel's unnamed paths as "other (kernel)";
- parse_script on perf script's text, inlined frames and [unknown] ones;
- table: shares and milliseconds per thread, rows only for stages seen;
- symbol_files on the mailtap under test: its functions map to the files
  they are written in (the build has debugging information).

    test_stages.py --mailtap build/mailtap
"""

import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import stages  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL: %s" % what)


SYMFILE = {
    "mt_reasm_packet": "reassembly/reasm.c",
    "imap_tok_feed": "dissect/imap_tok.c",
    "ni_blocks2": "dissect/hash.c",
    "mt_msgbuf_dotbody": "dissect/message.c",
    "mt_mime_parse_hashed": "dissect/mime.c",
    "fast_headers": "dissect/mime_fast.c",
    "back_main": "cli/pipeline.c",
    "mt_json_event": "output/json.c",
    "mt_rec_get": "output/records.c",
    "mt_source_run": "capture/source.c",
    "main": "cli/main.c",
}

K = "[kernel.kallsyms]"
CASES = [
    # (frames from the sampled function outwards, stage)
    ([("mt_reasm_packet", "mailtap"), ("main", "mailtap")], "TCP reassembly"),
    ([("__memchr_evex", "libc.so.6"), ("imap_tok_feed", "mailtap"),
      ("mt_reasm_packet", "mailtap")], "dissectors"),
    ([("_mm_add_epi32", "inlined"), ("ni_blocks2", "mailtap"), ("back_main", "mailtap")],
     "SHA-256"),
    ([("_nettle_sha256_compress_x86_64", "libnettle.so.8")], "SHA-256"),
    ([("clear_page_erms", K), ("folio_zero_user", K), ("__x64_sys_madvise", K),
      ("mt_msgbuf_dotbody", "mailtap")], "fresh pages (kernel)"),
    ([("__memmove_avx512_unaligned_erms", "libc.so.6"), ("mt_msgbuf_dotbody", "mailtap")],
     "message buffers"),
    ([("_copy_to_iter", K), ("filemap_read", K), ("__x64_sys_pread64", K),
      ("mt_source_run", "mailtap")], "reading the capture"),
    ([("pvm_irq_enable", K), ("try_to_wake_up", K), ("futex_wake", K),
      ("__x64_sys_futex", K), ("pthread_cond_signal", "libc.so.6"),
      ("mt_reasm_packet", "mailtap")], "hand-over between threads"),
    ([("shmem_write_end", K), ("__x64_sys_write", K), ("mt_json_event", "mailtap")], "output"),
    ([("mi_malloc", "libmimalloc.so.2.0"), ("g_malloc", "libglib-2.0.so.0"),
      ("fast_headers", "mailtap")], "allocation"),
    ([("g_mime_parser_construct_message", "libgmime-3.0.so.0"),
      ("mt_mime_parse_hashed", "mailtap")], "MIME"),
    ([("__strlen_evex", "libc.so.6"), ("mt_rec_get", "mailtap")], "hand-over between threads"),
    ([("g_utf8_validate_len", "libglib-2.0.so.0"), ("fast_headers+0x12", "mailtap")], "MIME"),
    ([("native_set_pte", K), ("vmap_small_pages_range_noflush", K)], "other (kernel)"),
    ([("[unknown]", "[unknown]")], "other"),
    ([], "other"),
]


def check_classify():
    for frames, want in CASES:
        got = stages.classify(frames, SYMFILE)
        check(got == want, "classify %s: %r, want %r" % ([f[0] for f in frames], got, want))
    for st in {w for _, w in CASES}:
        check(st in stages.STAGES, "stage %r is a row of the table" % st)


SCRIPT = """mailtap  2620 
\tffffffff822382f7 clear_page_erms ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64_after_hwframe ([kernel.kallsyms])
\t           44a10 mt_msgbuf_dotbody (/work/main/build/mailtap)

mailtap-msg  2621 
\t           21737 _mm_add_epi32 (inlined)
\t            acfc ni_blocks2 (/work/main/build/mailtap)
\t            1234 [unknown] ([unknown])

mailtap-w1  2622 
\t            acfc operator delete[] (/usr/lib/libstdc++.so.6)
"""


def check_parse():
    got = list(stages.parse_script(SCRIPT.splitlines(True)))
    check([c for c, _ in got] == ["mailtap", "mailtap-msg", "mailtap-w1"],
          "parse_script: three samples by thread, got %r" % [c for c, _ in got])
    if len(got) == 3:
        check(got[0][1][0] == ("clear_page_erms", K), "parse_script: a kernel frame: %r" % (got[0][1][:1],))
        check(got[1][1][0] == ("_mm_add_epi32", "inlined"), "parse_script: an inlined frame")
        check(got[1][1][2] == ("[unknown]", "[unknown]"), "parse_script: an [unknown] frame")
        check(got[2][1][0][0] == "operator delete[]", "parse_script: a name with a space and brackets")
    counts = stages.tally(got, SYMFILE)
    check(list(counts) == ["reading thread", "message thread", "mailtap-w1"],
          "tally: threads named and in order, got %r" % list(counts))
    check(counts["reading thread"]["fresh pages (kernel)"] == 1 and
          counts["message thread"]["SHA-256"] == 1 and counts["mailtap-w1"]["allocation"] == 1,
          "tally: each sample in its stage: %r" % counts)


def check_table():
    counts = collections.OrderedDict()
    counts["reading thread"] = collections.Counter({"TCP reassembly": 3, "output": 1})
    counts["message thread"] = collections.Counter({"SHA-256": 4})
    t = stages.table(counts, 4000).splitlines()
    check(t[0] == "| stage | reading thread | message thread | all |", "table head: %r" % t[0])
    rows = {l.split(" | ")[0][2:]: l for l in t[2:]}
    check(set(rows) == {"TCP reassembly", "SHA-256", "output", "**all**"},
          "table: a row per stage seen, and the sum: %r" % sorted(rows))
    check(rows.get("SHA-256") == "| SHA-256 | 0.0 % (0 ms) | 50.0 % (1 ms) | 50.0 % (1 ms) |",
          "table: SHA-256 row: %r" % rows.get("SHA-256"))
    check(rows.get("**all**") == "| **all** | 50.0 % (1 ms) | 50.0 % (1 ms) | 100.0 % (2 ms) |",
          "table: the sum: %r" % rows.get("**all**"))
    order = [l.split(" | ")[0][2:] for l in t[2:]]
    check(order == ["TCP reassembly", "SHA-256", "output", "**all**"],
          "table: rows in the pipeline's order: %r" % order)
    check(stages.table(collections.OrderedDict(), 4000) == "no samples\n", "table: no samples")


def check_binary(mailtap):
    files = stages.symbol_files(mailtap, ROOT)
    for fn, path in [("mt_reasm_packet", "reassembly/reasm.c"), ("imap_tok_feed", "dissect/imap_tok.c"),
                     ("mt_source_run", "capture/source.c"), ("main", "cli/main.c")]:
        check(files.get(fn) == path, "symbol_files: %s in %s, got %r" % (fn, path, files.get(fn)))
    check(stages.file_stage(files.get("mt_reasm_packet", "")) == "TCP reassembly",
          "file_stage of mt_reasm_packet's file")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    a = ap.parse_args()
    check_classify()
    check_parse()
    check_table()
    check_binary(a.mailtap)
    print("test_stages: %d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
