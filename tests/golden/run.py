#!/usr/bin/env python3
"""Golden-output tests: one directory per case under tests/golden/.

Each case directory holds README.md (why the case exists), expected.jsonl
(mailtap's --json output, reviewed by a person) and optionally `args`
(extra command-line arguments, one per line) and `capture` (the capture's
path relative to the repository; default samples/<case>.pcap).

  run.py --mailtap BIN CASE      compare one case
  run.py --mailtap BIN --update  rewrite every expected.jsonl (review the diff!)
"""
import argparse
import difflib
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def case_command(mailtap, case):
    d = os.path.join(HERE, case)
    cap = os.path.join(TOP, "samples", case + ".pcap")
    p = os.path.join(d, "capture")
    if os.path.exists(p):
        with open(p) as f:
            cap = os.path.join(TOP, f.read().strip())
    args = []
    p = os.path.join(d, "args")
    if os.path.exists(p):
        with open(p) as f:
            args = [a.strip() for a in f if a.strip()]
    return [mailtap, "-q", "-r", cap, "--json"] + args


def run_case(mailtap, case):
    r = subprocess.run(case_command(mailtap, case), capture_output=True)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    cases = a.cases or sorted(
        c for c in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, c, "README.md")))
    passed = failed = 0
    for case in cases:
        rc, out, err = run_case(a.mailtap, case)
        exp_path = os.path.join(HERE, case, "expected.jsonl")
        if a.update:
            with open(exp_path, "w") as f:
                f.write(out)
            print(f"updated {case}")
            continue
        with open(exp_path) as f:
            expected = f.read()
        if rc not in (0, 2) or out != expected:
            failed += 1
            print(f"FAIL {case} (exit {rc})")
            sys.stdout.writelines(difflib.unified_diff(
                expected.splitlines(True), out.splitlines(True), "expected", "actual", n=1))
            if err:
                print(err)
        else:
            passed += 1
            print(f"ok   {case}")
    if not a.update:
        print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
