#!/usr/bin/env python3
"""Link-layer and IP-variant tests: the same traffic in every encapsulation.

Every sample capture (samples/*.pcap, *.pcapng) and the synthetic captures of
tests/tools/pcaptool.py are rewritten as plain Ethernet (the baseline) and as
each variant (VLAN, QinQ, SLL, SLL2, raw IP, NULL, LOOP, IPv4 fragments, IPv6
with extension headers, pcapng, nanosecond and big-endian pcap, wrong TCP
checksums).  mailtap's session list and streams for a variant must equal the
baseline's.  Snaplen truncation and a lost fragment must instead report gaps
where bytes are missing.  See README.md here for why each case exists.

  test_linklayer.py --mailtap build/mailtap --samples samples [--keep] [--only TEXT]
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import pcaptool as pt  # noqa: E402

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "pcaptool.py")

# Variants whose sessions and streams must equal the baseline's.
SAME = ["vlan", "qinq", "sll", "sll2", "raw", "raw12", "null", "loop", "pcapng",
        "pcap-nsec", "pcap-be", "badsum", "ipfrag", "ipfrag-ooo", "ipv6", "ipv6ext"]
# Variants that lose bytes: compared with the tool's reassembly of the file.
LOSSY = {"snaplen": ["snaplen_truncated", "gap"], "ipfrag-drop": ["ipfrag_incomplete", "gap"]}
# Session fields compared with the baseline.
FIELDS = ["c2s_bytes", "s2c_bytes", "complete", "gaps", "gap_bytes", "start", "end",
          "anomalies"]


def data_flows(flows):
    return [f for f in flows if f.c2s.data or f.s2c.data or f.c2s.gaps or f.s2c.gaps]


def norm_gaps(v):
    try:
        return sorted((g["dir"], g["offset"], g["len"]) for g in v or [])
    except (KeyError, TypeError):
        return v


def check_run(run, errors):
    if run.rc != 0:
        errors.append(f"exit code {run.rc}: {run.stderr.strip()[:300]}")
    if run.bad_lines:
        errors.append(f"{len(run.bad_lines)} stdout lines are not JSON, e.g. {run.bad_lines[0]!r}")


def compare_expected(run, flows, errors, map6=False):
    """mailtap's streams and gaps against the tool's expectation."""
    keys = [(f.client, f.server) for f in flows]
    for (key, sess, swapped), f in zip(pt.match_sessions(keys, run.sessions, map6), flows):
        label = f"{key[0][0]}:{key[0][1]}>{key[1][0]}:{key[1][1]} "
        if sess is None:
            errors.append(f"{label}no session in mailtap's output")
        elif swapped:
            errors.append(f"{label}client and server swapped")
        else:
            errors += pt.check_session(sess, run.streams, f.c2s.data, f.s2c.data,
                                       pt.flow_gaps(f), label)


def compare_baseline(run, base, errors, map6=False, ignore_anomalies=()):
    """A variant's sessions against the baseline's, field by field."""
    keys = [pt.session_key(s) for s in base.sessions]
    keys = [k for k in keys if k is not None]
    if len(run.sessions) != len(base.sessions):
        errors.append(f"{len(run.sessions)} sessions, baseline has {len(base.sessions)}")
    for (key, sess, swapped), bs in zip(pt.match_sessions(keys, run.sessions, map6),
                                        [s for s in base.sessions if pt.session_key(s)]):
        label = f"{key[0][0]}:{key[0][1]}>{key[1][0]}:{key[1][1]} "
        if sess is None:
            errors.append(f"{label}session missing (baseline session {bs.get('session')})")
            continue
        if swapped:
            errors.append(f"{label}client and server swapped")
            continue
        for fld in FIELDS:
            a, b = bs.get(fld), sess.get(fld)
            if fld == "gaps":
                a, b = norm_gaps(a), norm_gaps(b)
            if fld == "anomalies":
                a = {k: v for k, v in (a or {}).items() if k not in ignore_anomalies}
                b = {k: v for k, v in (b or {}).items() if k not in ignore_anomalies}
            if a != b:
                errors.append(f"{label}{fld}: {b!r}, baseline {a!r}")
        for d in ("c2s", "s2c"):
            want = base.streams.get(bs.get("session"), {}).get(d)
            got = run.streams.get(sess.get("session"), {}).get(d)
            if want != got:
                errors.append(f"{label}{d} stream differs from baseline: "
                              f"{pt.describe_diff(want or b'', got)}")


def anomaly_seen(run, name):
    if any((s.get("anomalies") or {}).get(name) for s in run.sessions):
        return True
    # packets that belong to no session (IPv4 fragments that never
    # completed) are counted in the closing summary
    if any(e.get("type") == "summary" and (e.get("anomalies") or {}).get(name)
           for e in run.events):
        return True
    return any(e.get("type") == "anomaly" and name in (e.get("name"), e.get("anomaly"))
               for e in run.events)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--only", help="run only cases whose name contains this text")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not os.access(args.mailtap, os.X_OK):
        print(f"mailtap binary not found or not executable: {args.mailtap}")
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="mailtap-linklayer-")
    samples, synth_cmds = pt.suite_inputs(args.samples, tmp)
    passed = failed = skipped = 0

    def report(name, errors, repro):
        nonlocal passed, failed
        if errors:
            failed += 1
            print(f"FAIL {name}")
            for e in errors[:8]:
                print(f"     {e}")
            if len(errors) > 8:
                print(f"     ... {len(errors) - 8} more")
            for r in repro:
                print(f"     reproduce: {r}")
        else:
            passed += 1
            if args.verbose:
                print(f"PASS {name}")

    try:
        for sample in samples:
            sname = os.path.basename(sample)
            try:
                cap = pt.read_capture(sample)
            except (OSError, ValueError) as e:
                report(sname, [f"cannot read: {e}"], [])
                continue
            frames = pt.decode_capture(cap)
            flows = data_flows(pt.expected_streams(frames))
            if not flows:
                print(f"SKIP {sname}: no TCP data")
                skipped += 1
                continue
            has_v4 = any(fr.seg is not None and fr.seg.ver == 4 for fr in frames)
            pre = [synth_cmds[sample]] if sample in synth_cmds else []
            src = sname if sample in synth_cmds else os.path.relpath(sample)
            stem = os.path.join(tmp, sname.replace(":", "_"))

            def run_variant(v):
                path = f"{stem}.{v}.pcap"
                pt.write_variant(path, frames, v)
                run = pt.run_mailtap(args.mailtap, path, f"{stem}.{v}.streams",
                                     timeout=args.timeout)
                repro = pre + [f"python3 {os.path.relpath(TOOL)} encap {src} {v}.pcap --to {v}; "
                               f"mailtap -r {v}.pcap --json --write-streams streams"]
                return path, run, repro

            # Baseline: the capture rewritten as plain Ethernet.
            # It runs even when --only excludes it: the variants compare with it.
            name = f"{sname}:ether"
            _p, base, repro = run_variant("ether")
            errors = []
            check_run(base, errors)
            compare_expected(base, flows, errors)
            if not args.only or args.only in name:
                report(name, errors, repro)
            for v in SAME + list(LOSSY):
                name = f"{sname}:{v}"
                if args.only and args.only not in name:
                    continue
                if v.startswith("ipfrag") and not has_v4:
                    continue   # nothing to fragment
                if v == "ipv6" and not has_v4:
                    continue   # already IPv6
                map6 = v.startswith("ipv6") and has_v4
                errors = []
                try:
                    path, run, repro = run_variant(v)
                    check_run(run, errors)
                    if v in LOSSY:
                        lost = data_flows(pt.expected_streams(pt.read_capture(path)))
                        compare_expected(run, lost, errors)
                        if any(pt.flow_gaps(f) for f in lost):
                            for an in LOSSY[v]:
                                if not anomaly_seen(run, an):
                                    errors.append(f"anomaly {an} not reported")
                        elif v == "snaplen":
                            print(f"     note: {name}: no packet was long enough to be cut")
                    else:
                        compare_expected(run, flows, errors, map6)
                        compare_baseline(run, base, errors, map6)
                except Exception as e:   # a tool bug must not hide the other cases
                    errors.append(f"test error: {type(e).__name__}: {e}")
                    repro = []
                report(name, errors, repro)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
