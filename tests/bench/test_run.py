#!/usr/bin/env python3
"""bench/run.py, the benchmark's one command, on small captures: it must
make its captures, run the floor and mailtap, and write what it promises.

- RESULTS (Markdown): the captures table, one section per section asked
  for, a ground-truth row, the floor's row, and a row for each mailtap
  mode with what it found as counts and as a share of the ground truth:
  100 % of sessions, messages and credentials in every mode;
- the raw timings (JSON) beside a --results other than bench/RESULTS.md,
  with positive medians for every tool that ran;
- the tools' DIR where --dir says, and the Machine section saying so;
- the other tools' versions, or "not installed" (not dpkg-query's error);
- at least 5 runs in the workers section, whose target is a ratio;
- bench_many (the scaling section's loop) takes the captures in turn in
  every round, not one capture's runs after the other's;
- the core check before each round runs the floor once on each core, pinned
  there, and gives this process its affinity back; RESULTS says per section
  what it found, the raw timings keep it, and a ratio target measured in
  rounds with unequal cores also gives the ratio over the equal rounds.

The timings themselves are not asserted: that is the benchmark's business
(bench/README.md), on a machine that is not a test runner's.

    test_run.py --mailtap build/mailtap
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(ROOT, "bench", "run.py")

failures = 0


def check(ok, what):
    global failures
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures += 1


def rows(md, heading):
    """The table rows under a '## heading', as lists of cells."""
    m = re.search(r"^## " + re.escape(heading) + r"\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    if not m:
        return None
    out = []
    for line in m.group(1).splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            out.append([c.strip() for c in line.strip("|").split("|")])
    return out


def check_bench_many(tmp):
    """bench_many with two stand-in tools on two files: the order they ran
    in, as each appended it to a log."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import run  # noqa: E402 (bench/run.py, imported only here)
    log = os.path.join(tmp, "order.log")
    caps = []
    for name in ("A", "B"):
        caps.append(os.path.join(tmp, name))
        with open(caps[-1], "w") as f:
            f.write(name)
    none = lambda _out, _dir: {"sessions": None, "messages": None, "credentials": None}
    tools = [run.Tool(k, k, ["sh", "-c", 'printf "%%s %s\\n" "$(cat "$0")" >> %s' % (k, log), "{F}"],
                      "sh", none) for k in ("t1", "t2")]
    a = argparse.Namespace(runs=2, timeout=60, dirs=os.path.join(tmp, "many"))
    res = run.bench_many([("a", tools, caps[0]), ("b", tools, caps[1])], a, os.path.join(tmp, "w"))
    order = open(log).read().split("\n")[:-1]
    want = ["A t1", "A t2", "B t1", "B t2"] * 2
    check(order == want, "bench_many: captures in turn in every round (%s)" % order)
    check(all(len(res[g][k]["walls"]) == 2 for g in "ab" for k in ("t1", "t2")),
          "bench_many: two timed runs for each tool on each capture")


def check_cores(tmp):
    """core_check with a stand-in floor that records the cores it may run
    on; then the pure functions that report the checks, on made-up rounds."""
    import run  # noqa: E402 (check_bench_many put bench/ on the path)
    stand_in = os.path.join(tmp, "floor.sh")
    with open(stand_in, "w") as f:
        f.write('#!/bin/sh\nsed -n "s/^Cpus_allowed_list:[[:space:]]*//p" /proc/self/status >> "$1"\n')
    os.chmod(stand_in, 0o755)
    log = os.path.join(tmp, "cores.log")
    mine = os.sched_getaffinity(0)
    got = run.core_check(stand_in, log)
    seen = open(log).read().split()
    want = [str(c) for c in sorted(mine)]
    check(seen == want and sorted(got) == sorted(mine) and all(t > 0 for t in got.values()),
          "core_check: one run pinned to each core in turn (%s, want %s)" % (seen, want))
    check(os.sched_getaffinity(0) == mine, "core_check: this process's affinity given back")

    run.CORE_ROUNDS.clear()
    run.CORE_ROUNDS["w"] = [{0: 0.20, 1: 0.20}, {0: 0.30, 1: 0.20}, {0: 0.20, 1: 0.21}]
    mk = lambda walls: {"runs": [{"wall": w, "timeout": False} for w in walls]}
    res = {"a": mk([0.40, 0.60, 0.42]), "b": mk([0.20, 0.20, 0.21])}
    table = [  # (what, got, want)
        ("core_spread, equal", run.core_spread({0: 0.2, 1: 0.2}), 1.0),
        ("core_spread, one core 1.5x", round(run.core_spread({0: 0.3, 1: 0.2}), 6), 1.5),
        ("core_spread, one core", run.core_spread({0: 0.3}), 1.0),
        ("equal_rounds_ratio: rounds 1 and 3", run.equal_rounds_ratio(res, "w", "a", "b"), (2.0, 2, 3)),
        ("equal_rounds_ratio: runs missing", run.equal_rounds_ratio({"a": mk([1]), "b": mk([1])}, "w", "a", "b"),
         (None, 0, 3)),
        ("ratio_cell with an unequal round", run.ratio_cell(2.4, res, "w", "a", "b"),
         "2.40 x (2.00 x in the 2 of 3 rounds with equal cores)"),
        ("ratio_cell, no checks", run.ratio_cell(2.4, res, "none", "a", "b"), "2.40 x"),
        ("cpu_desc, a virtual AMD", run.cpu_desc(
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
            "model name\t: AMD EPYC\ncpu MHz\t\t: 2595.124\nflags\t\t: fpu sse hypervisor avx\n\n"
            "processor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: Other\n"),
         "AMD EPYC (family 25, model 17, 2595 MHz, virtual)"),
        ("cpu_desc, no clock, not virtual", run.cpu_desc(
            "cpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R)\nflags\t: fpu sse\n"),
         "Intel(R) Xeon(R) (family 6, model 207)"),
        ("cpu_desc, only a name (arm64)", run.cpu_desc("model name\t: ARMv8 Processor rev 1\n"),
         "ARMv8 Processor rev 1"),
        ("cpu_desc, nothing", run.cpu_desc("Features\t: fp asimd\n"), None),
    ]
    for what, got, want in table:
        check(got == want, "%s: %r" % (what, got))
    line = run.cores_line("w") or ""
    check(line.startswith("Cores: the floor pinned to each core in turn before each round (rounds 1 to 3): "
                          "cpu0 0.200, 0.300, 0.200 s; cpu1 0.200, 0.200, 0.210 s. ")
          and "in round 2 (1.50x)" in line, "cores_line names the unequal round (%s)" % line)
    run.CORE_ROUNDS["e"] = [{0: 0.2, 1: 0.2}]
    check((run.cores_line("e") or "").endswith("The cores were equal (within 1.10x) in every round."),
          "cores_line says when every round was equal")
    check(run.cores_line("none") is None, "cores_line: nothing for a section without checks")
    run.CORE_ROUNDS.clear()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailtap-bench-") as tmp:
        check_bench_many(tmp)
        check_cores(tmp)
        results = os.path.join(tmp, "R.md")
        cmd = [sys.executable, RUN, "--quick", "--only", "workers,large", "--runs", "1",
               "--size", "4M", "--mailtap", os.path.abspath(args.mailtap),
               "--data", os.path.join(tmp, "data"), "--results", results,
               "--dir", os.path.join(tmp, "out")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, "run.py exits 0 (%s)" % r.stderr.strip().splitlines()[-1:])
        if r.returncode != 0:
            print(r.stderr)
            return 1
        md = open(results, encoding="utf-8").read()
        check("the tools' `DIR` under %s (--dir)" % os.path.join(tmp, "out") in md,
              "the Machine section names --dir")
        check(os.path.isdir(os.path.join(tmp, "out")) and not os.listdir(os.path.join(tmp, "out")),
              "the tools wrote under --dir, and their directories were removed")
        check(re.search(r"^- tshark (not installed|\d\S*), dsniff (not installed|\d\S*), "
                        r"tcpflow (not installed|\d\S*)$", md, re.M) is not None,
              "the Machine section gives each other tool's version or says it is not installed")
        caps = rows(md, "Captures")
        check(caps is not None and any(c[0] == "mixed-4M.pcap" for c in caps[1:]),
              "the captures table lists the mixed capture")
        for heading, modes in (("Workers", ["mailtap --json", "mailtap --json --workers 1",
                                            "mailtap --json --workers 2"]),
                               ("Large attachments", ["mailtap --json", "mailtap --json -x DIR"])):
            t = rows(md, heading)
            check(t is not None, "section %s is there" % heading)
            if t is None:
                continue
            head, body = t[0], t[1:]
            check(head[:2] == ["tool", "wall (median)"] and head[-3:] == ["sessions", "messages", "credentials"],
                  "%s: the table's columns" % heading)
            truth = [r for r in body if r[0] == "**ground truth** (gen.py)"]
            check(len(truth) == 1 and all(re.fullmatch(r"\*\*[\d,]+\*\*", c) for c in truth[0][-3:]),
                  "%s: a ground-truth row with three counts" % heading)
            check(any(r[0].startswith("floor") for r in body), "%s: the floor's row" % heading)
            for mode in modes:
                row = [r for r in body if r[0] == mode]
                check(len(row) == 1, "%s: a row for %s" % (heading, mode))
                if not row:
                    continue
                found = row[0][-3:]
                want = [c.strip("*") for c in truth[0][-3:]] if truth else []
                check([re.sub(r" \(.*", "", c) for c in found] == want and
                      all(c.endswith("(100%)") for c in found),
                      "%s: %s finds the ground truth (%s)" % (heading, mode, ", ".join(found)))
                check(re.fullmatch(r"[\d.]+ s", row[0][1]) is not None and
                      re.fullmatch(r"[\d.]+ MiB", row[0][4]) is not None,
                      "%s: %s has a wall time and a peak RSS" % (heading, mode))
        tg = rows(md, "Targets (shared/PERFORMANCE.md)") or []
        check(any(r[0].startswith("`--workers 2` at least 1.6x")
                  and re.fullmatch(r"[\d.]+ x( \((unequal cores in every round|[\d.]+ x in the \d of 5 "
                                   r"rounds with equal cores)\))?", r[1])
                  and r[2] in ("yes", "**no**") for r in tg),
              "the targets table has the workers' speed-up, measured and judged")
        ncpu = len(os.sched_getaffinity(0))
        m = re.search(r"^Cores: the floor pinned to each core in turn before each round \(rounds 1 to 5\): "
                      r"(.*?)\. (The cores were equal|One core was)", md, re.M)
        check(m is not None and len(m.group(1).split("; ")) == ncpu and
              all(len(p.split(", ")) == 5 for p in m.group(1).split("; ")),
              "the workers section gives the core check of each of its 5 rounds, for each core")
        raw = os.path.join(tmp, "R.json")
        check(os.path.exists(raw), "raw timings written beside --results")
        if os.path.exists(raw):
            data = json.load(open(raw, encoding="utf-8"))
            check(bool(data), "raw timings are not empty")
            walls = lambda sec, k: len(data.get(sec, {}).get("tools", {}).get(k, {}).get("walls", []))
            check(walls("large", "json") == 1 and walls("workers", "workers2") == 5,
                  "--runs 1: one run in the large section, 5 in the workers section (%d, %d)"
                  % (walls("large", "json"), walls("workers", "workers2")))
            cores = data.get("cores", {})
            check(len(cores.get("workers", [])) == 5 and len(cores.get("large", [])) == 1 and
                  all(len(c) == len(os.sched_getaffinity(0)) for c in cores.get("workers", [])),
                  "the raw timings keep the core check of every round (%s)" % cores)
        # the short section: 10,000 sessions 1,000 at a time, then all open at once
        res2 = os.path.join(tmp, "S.md")
        cmd = [sys.executable, RUN, "--quick", "--only", "short", "--runs", "1",
               "--mailtap", os.path.abspath(args.mailtap), "--data", os.path.join(tmp, "data"),
               "--results", res2, "--dir", os.path.join(tmp, "out")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, "run.py --only short exits 0 (%s)" % r.stderr.strip().splitlines()[-1:])
        md = open(res2, encoding="utf-8").read() if r.returncode == 0 else ""
        for heading in ("Many short sessions", "Many sessions open at once"):
            t = rows(md, heading) or [[]]
            row = [x for x in t[1:] if x[0] == "mailtap --json"]
            check(len(row) == 1 and all(c.endswith("(100%)") for c in row[0][-3:]),
                  "%s: mailtap --json finds the ground truth (%s)" % (heading, row[0][-3:] if row else None))
        check(re.search(r"Documented bound \(docs/caps.md, \"Many open sessions\"\): 64 MiB \+ 4 KiB for "
                        r"each of the 10,000 sessions \+ 80 KiB for each of the [\d,]+ inflating IMAP "
                        r"COMPRESS = \d+ MiB\.", md) is not None,
              "the open-sessions section states the documented bound")
        tg = rows(md, "Targets (shared/PERFORMANCE.md)") or []
        check(any(x[0].startswith("peak RSS with 10,000 sessions open at once under the documented bound (")
                  and re.fullmatch(r"[\d.]+ MiB", x[1]) and x[2] in ("yes", "**no**") for x in tg),
              "the targets table judges peak RSS with every session open at once")
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
