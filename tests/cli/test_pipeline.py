#!/usr/bin/env python3
"""Messages analyzed on a second thread (cli/pipeline.c, dissect/defer.c)
give exactly what one thread gives: the same JSON Lines, the same text
transcript, the same summary and the same extracted files, byte for byte,
on every sample, every ../shared/corpus capture (when present) and two
captures made by bench/gen.py: a mixed one, and one of large messages that
fill the queue between the threads, so the reading thread waits for room.

--workers 2 and 3 (cli/workers.c) give the same JSON Lines as --workers 1
once sorted, on the two generated captures, on all the samples read in
one invocation, with -c and -f, and on a cut capture followed by a
sample (the same exit code): with each worker reading the files itself
(the default for regular files), through the rings (MAILTAP_WORKERS_RING=1)
and, for one capture, from standard input (rings, since it cannot be read
twice).  The large one goes round the 8 MiB ring of a worker; built with
-DMAILTAP_SMALL_RING=ON (as the test command builds it for
ThreadSanitizer and for AddressSanitizer), every capture goes round it,
many times.  The threads show which way ran: mailtap-r1 reads a file,
mailtap-w1 is fed by its ring.

It also checks that the default really runs the second thread (its name,
mailtap-msg, among the process's threads while it reads standard input),
and that --no-pipeline, --workers (1 or 2) and --credentials do not.

  test_pipeline.py --mailtap BIN --samples DIR [--corpus DIR]
"""
import argparse
import glob
import hashlib
import os
import subprocess
import sys
import tempfile
import time

FAILS = []
PASSES = [0]
HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "..", "bench", "gen.py")


def check(cond, what):
    if cond:
        PASSES[0] += 1
    else:
        FAILS.append(what)
        print("FAIL", what)


def tree(d):
    """Relative path -> SHA-256 of every file under d."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, d)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def run(args, tmp, tag, env=None, stdin=None):
    """mailtap's stdout (to a file, not a terminal: the pipeline's case)
    and exit code for args; env: variables added; stdin: a file to read
    standard input from."""
    outp = os.path.join(tmp, tag + ".out")
    e = dict(os.environ, **(env or {}))
    with open(outp, "wb") as f, open(stdin or os.devnull, "rb") as fi:
        r = subprocess.run([MAILTAP] + args, stdout=f, stderr=subprocess.PIPE, env=e, stdin=fi)
    return open(outp, "rb").read(), r.returncode


def compare(pcap, tmp):
    name = os.path.relpath(pcap)
    for mode, extra in (("json", ["--json"]), ("text", []), ("json-x", ["--json"])):
        res = {}
        for pipe in (True, False):
            tag = "%s-%s" % (mode, "pipe" if pipe else "one")
            args = extra + ["-r", pcap]
            xdir = None
            if mode == "json-x":
                # the same path both times: the records name the files
                xdir = os.path.join(tmp, "x")
                subprocess.run(["rm", "-rf", xdir])
                args += ["-x", xdir]
            if not pipe:
                args.append("--no-pipeline")
            out, rc = run(args, tmp, tag)
            res[pipe] = (out, rc, tree(xdir) if xdir else None)
            if xdir:
                subprocess.run(["rm", "-rf", xdir])
        a, b = res[True], res[False]
        check(a[1] == b[1], "%s %s: exit code %d with the pipeline, %d without" % (name, mode, a[1], b[1]))
        if a[0] != b[0]:
            al, bl = a[0].split(b"\n"), b[0].split(b"\n")
            i = next((k for k in range(min(len(al), len(bl))) if al[k] != bl[k]), min(len(al), len(bl)))
            check(False, "%s %s: output differs at line %d:\n  pipeline: %r\n  one thread: %r" % (
                name, mode, i + 1, al[i][:300] if i < len(al) else None, bl[i][:300] if i < len(bl) else None))
        else:
            check(len(a[0]) > 0, "%s %s: some output" % (name, mode))
        if mode == "json-x":
            check(a[2] == b[2], "%s: extracted files differ (%d with the pipeline, %d without)" % (
                name, len(a[2]), len(b[2])))


RING = {"MAILTAP_WORKERS_RING": "1"}


def compare_workers(inputs, what, tmp, extra=()):
    """--workers 2 and 3 against --workers 1, sorted: each worker reading
    the files itself (regular files, the default), through the rings
    (MAILTAP_WORKERS_RING=1), and, for one input, through the rings
    because it comes on standard input."""
    args = ["--json"] + list(extra)
    for p in inputs:
        args += ["-r", p]
    one, rc1 = run(args + ["--workers", "1"], tmp, "w1")
    lines = sorted(one.split(b"\n"))
    check(len(lines) > 1, "%s --workers 1: some output" % what)
    ways = [("", args, None, None), (" (rings)", args, RING, None)]
    if len(inputs) == 1:
        ways.append((" (standard input)", ["--json"] + list(extra) + ["-r", "-"], None, inputs[0]))
    for n in ("2", "3"):
        for how, a, env, stdin in ways:
            out, rc = run(a + ["--workers", n], tmp, "w" + n, env=env, stdin=stdin)
            check(rc == rc1, "%s%s: exit code %d with --workers %s, %d with one" % (
                what, how, rc, n, rc1))
            got = sorted(out.split(b"\n"))
            diff = sorted(set(got) ^ set(lines)) if got != lines else []
            check(got == lines, "%s --workers %s%s: %d lines, %d with one; first difference %r" % (
                what, n, how, len(got), len(lines), diff[0][:300] if diff else None))


def check_worker_threads(pcap):
    """--workers 2 on a regular file starts a worker that reads it
    (mailtap-r1); on standard input, a worker fed through its ring
    (mailtap-w1).  The file's run is watched until it ends."""
    seen = set()
    for _ in range(5):
        p = subprocess.Popen([MAILTAP, "-q", "--json", "--workers", "2", "-r", pcap],
                             stdout=subprocess.DEVNULL)
        while p.poll() is None:
            seen.update(threads_of(p.pid))
        if "mailtap-r1" in seen:
            break
    check("mailtap-r1" in seen and "mailtap-w1" not in seen,
          "--workers 2 on a file: a worker reading it (threads seen: %s)" % sorted(seen))
    names = threads_on_stdin(["--workers", "2"], open(pcap, "rb").read(),
                             lambda names, _t: "mailtap-w1" in names)
    check("mailtap-w1" in names and "mailtap-r1" not in names,
          "--workers 2 on standard input: a worker fed by its ring (threads: %s)" % names)


def threads_of(pid):
    names = []
    for t in glob.glob("/proc/%d/task/*/comm" % pid):
        try:
            names.append(open(t).read().strip())
        except OSError:
            pass
    return names


def threads_on_stdin(extra, data, done):
    """mailtap reading data from standard input with extra, the last byte
    held back while its threads are listed, until done(names, seconds) or
    10 s: -> the names last listed."""
    p = subprocess.Popen([MAILTAP, "-q", "-r", "-"] + extra, stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL)
    p.stdin.write(data[:-1])
    p.stdin.flush()
    names = []
    start = time.time()
    while time.time() < start + 10:
        names = threads_of(p.pid)
        if done(names, time.time() - start):
            break
        time.sleep(0.05)
    p.stdin.write(data[-1:])
    p.stdin.close()
    p.wait()
    return names


def check_threads(sample):
    """Reads a capture from standard input, holding the last bytes back
    while the threads are listed."""
    data = open(sample, "rb").read()
    cases = (([], True, "default"), (["--no-pipeline"], False, "--no-pipeline"),
             (["--workers", "1"], False, "--workers 1"), (["--workers", "2"], False, "--workers 2"),
             (["--credentials"], False, "--credentials"))
    for extra, want, what in cases:
        names = threads_on_stdin(extra, data, lambda names, t, want=want: "mailtap-msg" in names or (
            not want and len(names) >= 1 and t > 1))
        check(("mailtap-msg" in names) == want,
              "%s: message thread %s (threads: %s)" % (what, "expected" if want else "not expected", names))


def main():
    global MAILTAP
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--corpus")
    a = ap.parse_args()
    MAILTAP = os.path.abspath(a.mailtap)
    if (os.cpu_count() or 1) < 2:
        print("SKIP: one CPU: mailtap runs without the message thread")
        return 0
    pcaps = sorted(glob.glob(os.path.join(a.samples, "*.pcap")))
    if a.corpus and os.path.isdir(a.corpus):
        pcaps += sorted(glob.glob(os.path.join(a.corpus, "**", "*.pcap*"), recursive=True))
    else:
        print("note: no corpus at %s: samples and generated captures only" % a.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        for prof, size in (("mixed", "4M"), ("large", "24M")):
            r = subprocess.run([sys.executable, GEN, prof, "--out", tmp, "--seed", "3", "--size", size],
                               capture_output=True)
            check(r.returncode == 0, "gen.py %s: %s" % (prof, r.stderr.decode()[-300:]))
            pcaps.append(os.path.join(tmp, "%s-%s.pcap" % (prof, size)))
        for pcap in pcaps:
            compare(pcap, tmp)
        for pcap in pcaps[-2:]:
            compare_workers([pcap], os.path.basename(pcap), tmp)
        samples = sorted(glob.glob(os.path.join(a.samples, "*.pcap")))
        compare_workers(samples, "the samples", tmp)
        # -c and -f are the reading thread's and every worker's alike
        compare_workers(pcaps[-2:], "the generated captures, -c 3000 -f 'tcp port 25'", tmp,
                        ["-c", "3000", "-f", "tcp port 25"])
        # a damaged file: each worker stops where the reading thread does
        # (exit code 2 from it alone), after what came before
        cut = os.path.join(tmp, "cut.pcap")
        with open(pcaps[-2], "rb") as fi, open(cut, "wb") as fo:
            fo.write(fi.read()[: os.path.getsize(pcaps[-2]) * 2 // 3 + 5])
        compare_workers([cut, samples[0]], "a cut capture, then a sample", tmp)
        check_worker_threads(pcaps[-1])
        check_threads(os.path.join(a.samples, "smtp-attachment.pcap")
                      if os.path.exists(os.path.join(a.samples, "smtp-attachment.pcap")) else pcaps[0])
    print("%d checks passed, %d failed (%d captures)" % (PASSES[0], len(FAILS), len(pcaps)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
