#!/usr/bin/env python3
"""docs/caps.md is the one place every cap is listed: this checks it against
the code.

- Every cap of dissect/caps.h (MT_DEF_* defaults, named by their --cap name,
  and MT_CAP_* fixed caps) has a row in docs/caps.md with the same value,
  and every row names a cap that exists.
- `mailtap --list-caps` prints the same names and values.
- No engine source outside dissect/caps.h defines a cap of its own (a
  numeric macro named *_MAX or MT_CAP_*): a new cap goes into caps.h and
  gets a row in docs/caps.md.

Usage: test_caps.py --root SRC [--mailtap BIN]
"""
import argparse
import os
import re
import subprocess
import sys

ENGINE_DIRS = ("capture", "reassembly", "dissect", "output", "cli", "plugin")
# Macros named like caps that are not: what they compute is not input-driven.
NOT_CAPS = {
    "MT_B64_DECODED_MAX",  # dissect/b64.h: the output size of n Base64 characters
}
UNITS = {"": 1, "bytes": 1, "characters": 1, "s": 1, "KiB": 1024, "MiB": 1024 * 1024}

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def c_value(expr, **params):
    """The value of a caps.h macro body: integer arithmetic only."""
    e = re.sub(r"\(\s*u?int\d+_t\s*\)", "", expr)       # casts
    e = re.sub(r"\b(\d+)[uU]?[lL]*\b", r"\1", e)         # 64u, 1024UL
    for k, v in params.items():
        e = re.sub(r"\b%s\b" % re.escape(k), str(v), e)
    if not re.fullmatch(r"[\d\s()+\-*/]+", e):
        raise ValueError("not a plain integer expression: %r" % expr)
    return eval(e.replace("/", "//"))  # noqa: S307 (digits and operators only)


def read_caps_h(root):
    """{name: (params or None, body)} for MT_DEF_* and MT_CAP_* of caps.h."""
    out = {}
    text = open(os.path.join(root, "dissect", "caps.h"), encoding="utf-8").read()
    for m in re.finditer(r"^#define\s+(MT_(?:DEF|CAP)_\w+)(\((\w+)\))?\s+(.+?)\s*(?:/\*.*)?$",
                         text, re.M):
        out[m.group(1)] = (m.group(3), m.group(4))
    return out


def doc_value(text):
    """A docs/caps.md value cell: "64 KiB", "65535 bytes", "200000", "600 s"."""
    m = re.fullmatch(r"([\d,]+)\s*(bytes|characters|KiB|MiB|s)?", text.strip())
    if not m:
        return None
    return int(m.group(1).replace(",", "")) * UNITS[m.group(2) or ""]


def read_doc(root):
    """{name: value cell} of every table row of docs/caps.md naming a cap."""
    rows = {}
    for line in open(os.path.join(root, "docs", "caps.md"), encoding="utf-8"):
        m = re.match(r"\|\s*`([A-Za-z_0-9]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if m:
            if m.group(1) in rows:
                problem("docs/caps.md lists %s twice" % m.group(1))
            rows[m.group(1)] = m.group(2)
    return rows


def check_doc_against_code(caps, rows):
    names = {}
    for name, (param, body) in caps.items():
        doc_name = name[len("MT_DEF_"):].lower() if name.startswith("MT_DEF_") else name
        names[doc_name] = name
        cell = rows.get(doc_name)
        if cell is None:
            problem("%s (dissect/caps.h) has no row in docs/caps.md" % doc_name)
            continue
        if param:
            # a cap that depends on another: "8 x `mime_parts_max` + 1024"
            m = re.fullmatch(r"(\d+) x `(\w+)` \+ (\d+)", cell)
            if not m:
                problem("%s: docs/caps.md value %r is not 'A x `cap` + B'" % (doc_name, cell))
                continue
            a, b = int(m.group(1)), int(m.group(3))
            for p in (0, 1, 1000):
                if c_value(body, **{param: p}) != a * p + b:
                    problem("%s: docs/caps.md says %r, caps.h %r" % (doc_name, cell, body))
                    break
            continue
        want = c_value(body)
        got = doc_value(cell)
        if got != want:
            problem("%s: docs/caps.md says %r, caps.h says %s (%d)" % (doc_name, cell, body, want))
    for doc_name in rows:
        if doc_name not in names:
            problem("docs/caps.md lists %s, which dissect/caps.h does not define" % doc_name)


def check_list_caps(mailtap, caps, rows):
    out = subprocess.run([mailtap, "--list-caps"], capture_output=True, text=True, check=True)
    listed = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) >= 2:
            listed[f[0]] = int(f[1])
    defaults = {n[len("MT_DEF_"):].lower(): c_value(b) for n, (p, b) in caps.items()
                if n.startswith("MT_DEF_")}
    if not listed:
        problem("mailtap --list-caps printed nothing")
    for name, value in listed.items():
        if name not in defaults:
            problem("--list-caps prints %s, which caps.h has no MT_DEF_ for" % name)
        elif value != defaults[name]:
            problem("--list-caps says %s=%d, caps.h %d" % (name, value, defaults[name]))
        if name in rows and doc_value(rows[name]) != value:
            problem("--list-caps says %s=%d, docs/caps.md %r" % (name, value, rows[name]))
    for name in defaults:
        if name not in listed:
            problem("caps.h's default for %s is missing from --list-caps" % name)
    return len(listed)


def check_no_stray_caps(root):
    """Numeric macros that look like caps, defined outside caps.h."""
    pat = re.compile(r"^\s*#\s*define\s+(\w*_MAX|MT_CAP_\w+)\b(\(\w+\))?\s+(.*)$")
    found = 0
    for d in ENGINE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for fn in files:
                if not fn.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, fn)
                rel = os.path.relpath(path, root)
                if rel == os.path.join("dissect", "caps.h"):
                    continue
                for no, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
                    m = pat.match(line)
                    if m and m.group(1) not in NOT_CAPS and re.search(r"\d", m.group(3).split("/*")[0]):
                        found += 1
                        problem("%s:%d defines the cap %s outside dissect/caps.h "
                                "(move it there, with a row in docs/caps.md)"
                                % (rel, no, m.group(1)))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--mailtap")
    a = ap.parse_args()
    caps = read_caps_h(a.root)
    if len(caps) < 20:
        problem("read only %d caps from dissect/caps.h: the parser is wrong" % len(caps))
    rows = read_doc(a.root)
    check_doc_against_code(caps, rows)
    n_listed = check_list_caps(a.mailtap, caps, rows) if a.mailtap else 0
    check_no_stray_caps(a.root)
    print("%d caps in dissect/caps.h, %d rows in docs/caps.md, %d from --list-caps"
          % (len(caps), len(rows), n_listed))
    if problems:
        print("%d problem(s)" % len(problems))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
