#!/usr/bin/env python3
"""Conformance of mailtap's reassembled streams with tcpflow's, over a corpus.

For every capture under the corpus (*.pcap, *.pcapng, *.trace, also gzipped),
run `tcpflow -r X -o DIR` and `mailtap -r X --json --write-streams DIR`, match
flows by 4-tuple and compare the bytes of each direction.  Every difference is
classified (see README.md); a difference is expected when a line of
tcpflow_expected.txt matches it.  Unexpected differences make the exit code 1.

  tcpflow_check.py --mailtap build/mailtap --corpus ../shared/corpus
                   [--expected FILE] [--print-expected] [--keep] [-v]

Without the corpus it prints "SKIP: corpus not found" and exits 0.
"""

import argparse
import fnmatch
import gzip
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import pcaptool as pt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXTS = (".pcap", ".pcapng", ".trace", ".pcap.gz", ".pcapng.gz", ".trace.gz")


def load_expected(path):
    """Lines: CATEGORY CAPTURE-GLOB [FLOW-GLOB [DIR]]  # reason."""
    rules = []
    if not os.path.exists(path):
        return rules
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            parts += ["*"] * (4 - len(parts))
            rules.append((parts[0], parts[1], parts[2], parts[3], n))
    return rules


def is_expected(rules, category, capture, flow, d):
    for cat, cglob, fglob, dglob, _n in rules:
        if fnmatch.fnmatch(category, cat) and fnmatch.fnmatch(capture, cglob) and \
                fnmatch.fnmatch(flow, fglob) and fnmatch.fnmatch(d, dglob):
            return True
    return False


def fill_gaps(data, gaps):
    """mailtap's stream with its gaps filled with NUL bytes, as tcpflow writes them."""
    out = bytearray()
    pos = 0   # position in data
    for off, n in sorted(gaps):
        take = off - len(out)
        if take < 0:
            return None
        out += data[pos:pos + take]
        pos += take
        out += b"\x00" * n
    out += data[pos:]
    return bytes(out)


def classify(mt, tf, gaps, anomalies, session_present, tf_parts=None, independent=None):
    """Return None when equal, else a category name (documented in README.md)."""
    if mt == tf:
        return None
    if tf_parts and len(tf_parts) > 1 and tf_parts[0] == mt and \
            all(len(p) <= 64 for p in tf_parts[1:]):
        return "tcpflow_trailer_flow"
    # Ethernet pads frames to 60 bytes: a bare 54-byte ACK or FIN carries 6
    # bytes of trailer that the IP total length excludes.  tcpflow appends
    # them; pcaptool (independently of mailtap) agrees with mailtap.
    if tf is not None and tf.startswith(mt) and 0 < len(tf) - len(mt) <= \
            6 * max(1, len(tf_parts or ())) and independent == mt:
        return "tcpflow_eth_padding"
    if not session_present:
        return "only_tcpflow"
    if tf is None:
        return "only_mailtap" if mt else None
    if mt is None:
        return "stream_file_missing"
    if gaps:
        filled = fill_gaps(mt, gaps)
        if filled is not None and (filled == tf or tf.startswith(filled) or
                                   filled.startswith(tf)):
            return "gap_fill"
    if len(mt) == len(tf) and anomalies.get("overlap_conflict") and \
            (independent is None or independent == mt):
        return "overlap_last_copy"
    if tf.startswith(mt):
        return "tcpflow_longer"
    if mt.startswith(tf):
        return "mailtap_longer"
    return "unexplained"


def flow_name(c, s):
    return f"{c[0]}:{c[1]}-{s[0]}:{s[1]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--expected", default=os.path.join(HERE, "tcpflow_expected.txt"))
    ap.add_argument("--print-expected", action="store_true",
                    help="print lines for tcpflow_expected.txt covering the unexpected ones")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not os.path.isdir(args.corpus):
        print(f"SKIP: corpus not found ({args.corpus})")
        return 0
    if shutil.which("tcpflow") is None:
        print("SKIP: tcpflow not installed (Debian package tcpflow)")
        return 0
    if not os.access(args.mailtap, os.X_OK):
        print(f"mailtap binary not found or not executable: {args.mailtap}")
        return 1
    rules = load_expected(args.expected)
    captures = []
    for root, _dirs, files in os.walk(args.corpus):
        for fn in files:
            if fn.endswith(EXTS):
                captures.append(os.path.join(root, fn))
    captures.sort()
    tmp = tempfile.mkdtemp(prefix="mailtap-tcpflow-")
    stats = {"captures": 0, "directions": 0, "identical": 0, "expected": 0, "unexpected": 0}
    unexpected_lines = []
    try:
        for n, cap in enumerate(captures):
            rel = os.path.relpath(cap, args.corpus)
            work = os.path.join(tmp, str(n))
            os.makedirs(work)
            src = cap
            if cap.endswith(".gz"):   # tcpflow reads no gzip: decompress first
                src = os.path.join(work, os.path.basename(cap)[:-3])
                with gzip.open(cap, "rb") as fi, open(src, "wb") as fo:
                    shutil.copyfileobj(fi, fo)
            stats["captures"] += 1
            try:
                tparts = pt.tcpflow_streams(src, os.path.join(work, "tcpflow"), parts=True)
            except (subprocess.CalledProcessError, OSError) as e:
                print(f"{rel}: tcpflow failed: {e}")
                tparts = {}
            tfs = {k: b"".join(v) for k, v in tparts.items()}
            run = pt.run_mailtap(args.mailtap, src, os.path.join(work, "mailtap"))
            indep = {}
            try:   # pcaptool's own reassembly, an independent third opinion
                for f in pt.expected_streams(pt.read_capture(src)):
                    indep[(f.client[0], f.client[1], f.server[0], f.server[1])] = f.c2s.data
                    indep[(f.server[0], f.server[1], f.client[0], f.client[1])] = f.s2c.data
            except (OSError, ValueError):
                pass
            diffs = []
            if run.rc not in (0, 2) or run.bad_lines:
                diffs.append(("mailtap_error", "*", "*",
                              f"exit {run.rc}, {len(run.bad_lines)} non-JSON lines: "
                              f"{run.stderr.strip()[:200]}"))
            seen = set()
            for sess in run.sessions:
                key = pt.session_key(sess)
                if key is None:
                    continue
                c, s = key
                gaps = {"c2s": [], "s2c": []}
                for d, o, ln in pt.session_gaps(sess):
                    gaps.setdefault(d, []).append((o, ln))
                an = sess.get("anomalies") or {}
                for d, tkey in (("c2s", (c[0], c[1], s[0], s[1])),
                                ("s2c", (s[0], s[1], c[0], c[1]))):
                    seen.add(tkey)
                    mt = run.streams.get(sess.get("session"), {}).get(d)
                    tf = tfs.get(tkey)
                    if not mt and tf is None:
                        continue
                    stats["directions"] += 1
                    cat = classify(mt or b"", tf, gaps[d], an, True, tparts.get(tkey),
                                   indep.get(tkey))
                    if cat is None:
                        stats["identical"] += 1
                        continue
                    info = (f"mailtap {len(mt or b'')} bytes, tcpflow "
                            f"{'none' if tf is None else len(tf)} bytes, gaps {gaps[d]}, "
                            f"anomalies {an}")
                    if cat == "unexplained":
                        k = next((i for i in range(min(len(mt), len(tf))) if mt[i] != tf[i]),
                                 min(len(mt), len(tf)))
                        info += f"; first difference at {k}"
                    diffs.append((cat, flow_name(c, s), d, info))
            for tkey, data in tfs.items():
                if tkey in seen or not data:
                    continue
                stats["directions"] += 1
                diffs.append(("only_tcpflow", flow_name(tkey[:2], tkey[2:]), "?",
                              f"tcpflow {len(data)} bytes, no mailtap session"))
            for cat, flow, d, info in diffs:
                ok = is_expected(rules, cat, rel, flow, d)
                stats["expected" if ok else "unexpected"] += 1
                if not ok:
                    unexpected_lines.append(f"{cat} {rel} {flow} {d}")
                if args.verbose or not ok:
                    print(f"{'expected  ' if ok else 'UNEXPECTED'} {cat:18} {rel} {flow} {d}: {info}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{stats['captures']} captures, {stats['directions']} flow directions: "
          f"{stats['identical']} identical, {stats['expected']} expected differences, "
          f"{stats['unexpected']} unexpected")
    if args.print_expected and unexpected_lines:
        print("# lines for tcpflow_expected.txt (add a reason to each):")
        for line in unexpected_lines:
            print(line)
    return 1 if stats["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
