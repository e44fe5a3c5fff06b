#!/usr/bin/env python3
"""mailtap benchmark: one command that makes the captures, runs mailtap and
the other tools side by side on the same files, and writes bench/RESULTS.md
(and bench/results.png when matplotlib is there).

Sections (all by default; --only picks some):
  compare  on the mixed capture: the floor (bare libpcap loop), mailtap text,
           --json, --json -x DIR, tshark -z credentials, tshark field export,
           dsniff, mailsnarf, tcpflow: wall, MB/s, packets/s, peak RSS, ratio
           to the floor, and what each tool found next to the ground truth
  large    few sessions with multi-MB attachments: floor, mailtap --json (-x)
  short    100,000 short sessions, 1,000 open at once, then all open at once:
           floor, mailtap --json (peak RSS, against docs/caps.md's bound)
  scaling  mailtap --json on 250 MB, 500 MB and 1 GB mixed captures
  workers  mailtap --json --workers 1 vs 2 on the mixed capture

--quick makes everything small (50 MB mixed, 10,000 short sessions, scaling
on 25/50/100 MB) and writes bench/build/RESULTS-quick.md instead.
Python 3 standard library only (matplotlib optional, for the plot).
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
MIB = 1024 * 1024

# Debian packages of the tools (for --install).
PACKAGES = {"tshark": "tshark", "dsniff": "dsniff", "mailsnarf": "dsniff", "tcpflow": "tcpflow",
            "gcc": "gcc", "/usr/bin/time": "time", "matplotlib": "python3-matplotlib"}


def log(msg):
    print("run: " + msg, file=sys.stderr, flush=True)


def which(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


# ------------------------------------------------------------ output parsers
# Each takes the file holding the tool's standard output (and its output
# directory) and says what the tool found: None where it does not report it.


def count_mailtap_text(out, _dir):
    msg = cred = sess = 0
    rx_sess = re.compile(rb"^\[\d+\] \S+ .* (complete|incomplete)")
    with open(out, "rb") as f:
        for line in f:
            if line.startswith(b"  == message "):
                msg += 1
            elif line.startswith(b"  ** credential "):
                cred += 1
            elif line.startswith(b"[") and rx_sess.match(line):
                sess += 1
    return {"sessions": sess, "messages": msg, "credentials": cred}


def count_mailtap_json(out, _dir):
    c = {"session": 0, "message": 0, "credential": 0}
    with open(out, "rb") as f:
        for line in f:
            m = re.match(rb'\{\s*"type"\s*:\s*"(\w+)"', line)
            t = m.group(1).decode() if m else json.loads(line).get("type")
            if t in c:
                c[t] += 1
    return {"sessions": c["session"], "messages": c["message"], "credentials": c["credential"]}


def count_tshark_credentials(out, _dir):
    """Rows of the credentials table: 'Packet Protocol Username Info'."""
    n = 0
    with open(out, "rb") as f:
        for line in f:
            if re.match(rb"^\d+\s+\S", line):
                n += 1
    return {"sessions": None, "messages": None, "credentials": n}


def count_tshark_fields(out, _dir):
    """Fields: frame.number, frame.protocols, smtp.auth.username,
    imap.request.username, pop.request.command.  A message is a frame with
    an imf layer; a credential a frame with a user name (SMTP AUTH, IMAP
    LOGIN) or a POP3 PASS."""
    msg = cred = 0
    with open(out, "rb") as f:
        for line in f:
            cols = line.rstrip(b"\n").split(b"\t")
            if len(cols) < 5:
                continue
            if b"imf" in cols[1].split(b":"):
                msg += 1
            if cols[2] or cols[3] or cols[4].upper() == b"PASS":
                cred += 1
    return {"sessions": None, "messages": msg, "credentials": cred}


def count_dsniff(out, _dir):
    """dsniff prints one block per connection with credentials, each opened
    by a line of dashes."""
    n = 0
    with open(out, "rb") as f:
        for line in f:
            if line.startswith(b"-----"):
                n += 1
    return {"sessions": None, "messages": None, "credentials": n}


def count_mailsnarf(out, _dir):
    """mailsnarf writes an mbox: each message opens with 'From SENDER DATE'."""
    n = 0
    rx = re.compile(rb"^From \S+ (Mon|Tue|Wed|Thu|Fri|Sat|Sun) ")
    with open(out, "rb") as f:
        for line in f:
            if line.startswith(b"From ") and rx.match(line):
                n += 1
    return {"sessions": None, "messages": n, "credentials": None}


def count_tcpflow(_out, d):
    """tcpflow writes one file per flow direction: connections = files / 2."""
    try:
        files = [n for n in os.listdir(d) if n != "report.xml" and not n.endswith(".xml")]
    except OSError:
        files = []
    return {"sessions": (len(files) + 1) // 2, "messages": None, "credentials": None}


def count_floor(out, _dir):
    return {"sessions": None, "messages": None, "credentials": None}


# ------------------------------------------------------------------- tools


class Tool:
    def __init__(self, key, label, argv, needs, counter, outdir=False):
        self.key, self.label, self.argv, self.needs = key, label, argv, needs
        self.counter, self.outdir = counter, outdir

    def command(self, capture, outdir):
        return [a.replace("{F}", capture).replace("{DIR}", outdir) for a in self.argv]

    def display(self, mailtap):
        """The command as RESULTS.md shows it."""
        words = [("mailtap" if a == mailtap else a) for a in self.argv]
        words = [w.replace(os.path.join(BUILD, "floor"), "bench/build/floor") for w in words]
        return " ".join(shlex.quote(w) if w not in ("{F}", "{DIR}") else w[1:-1] for w in words)


def make_tools(mailtap, floor):
    mt = [mailtap, "-q", "--no-summary"]
    return {
        "floor": Tool("floor", "floor (libpcap loop, every byte)", [floor, "{F}"], floor, count_floor),
        "text": Tool("text", "mailtap (text)", mt + ["-r", "{F}"], mailtap, count_mailtap_text),
        "json": Tool("json", "mailtap --json", mt + ["--json", "-r", "{F}"], mailtap, count_mailtap_json),
        "json-x": Tool("json-x", "mailtap --json -x DIR", mt + ["--json", "-x", "{DIR}", "-r", "{F}"],
                       mailtap, count_mailtap_json, outdir=True),
        "workers1": Tool("workers1", "mailtap --json --workers 1",
                         mt + ["--json", "--workers", "1", "-r", "{F}"], mailtap, count_mailtap_json),
        "workers2": Tool("workers2", "mailtap --json --workers 2",
                         mt + ["--json", "--workers", "2", "-r", "{F}"], mailtap, count_mailtap_json),
        "tshark-cred": Tool("tshark-cred", "tshark -z credentials",
                            ["tshark", "-q", "-z", "credentials", "-r", "{F}"], "tshark",
                            count_tshark_credentials),
        "tshark-fields": Tool("tshark-fields", "tshark mail fields",
                              ["tshark", "-r", "{F}", "-Y", "smtp || pop || imap", "-T", "fields",
                               "-e", "frame.number", "-e", "frame.protocols", "-e", "smtp.auth.username",
                               "-e", "imap.request.username", "-e", "pop.request.command",
                               "-e", "smtp.req.command", "-e", "imf.from", "-e", "imf.subject"],
                              "tshark", count_tshark_fields),
        "dsniff": Tool("dsniff", "dsniff -n", ["dsniff", "-n", "-p", "{F}"], "dsniff", count_dsniff),
        "mailsnarf": Tool("mailsnarf", "mailsnarf", ["mailsnarf", "-p", "{F}"], "mailsnarf", count_mailsnarf),
        "tcpflow": Tool("tcpflow", "tcpflow", ["tcpflow", "-r", "{F}", "-o", "{DIR}"], "tcpflow",
                        count_tcpflow, outdir=True),
    }


# ---------------------------------------------------------------- running


TIME = "/usr/bin/time"


def dir_base(args, work):
    """Where tools write DIR: --dir, else a tmpfs (/dev/shm) with room for a
    few GB, else the work directory.  -> (path, description).

    On disk, creating tens of thousands of files can cost seconds of kernel
    time that have nothing to do with the tool: on this project's VM (ext4
    without a journal) the inode allocator reads every recently deleted
    inode's record for each new file, and each run deletes the one before
    (bench/README.md)."""
    if args.dir:
        return os.path.abspath(args.dir), "under %s (--dir)" % os.path.abspath(args.dir)
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        with open("/proc/mounts") as f:
            tmpfs = any(l.split()[1:3] == [shm, "tmpfs"] for l in f)
        if tmpfs and os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize >= 4 << 30:
            return os.path.join(shm, "mailtap-bench-%d" % os.getpid()), "in memory (tmpfs, /dev/shm)"
    except (OSError, IndexError):
        pass
    return work, "on disk, under bench/build/work"


def run_once(tool, capture, timeout, dirs):
    """Runs tool on capture once, its DIR under dirs: -> dict(wall, rss_kib, rc,
    timeout, out, dir).

    Peak RSS comes from GNU time (/usr/bin/time) when it is there: the
    rusage that os.wait4 gives for a child of this Python process counts the
    interpreter's pages the child had between fork and exec (25 MiB or so)."""
    # Standard output goes where DIR does (dir_base): writing a tool's
    # output to this VM's disk cost mailtap --json (92 MB of JSON on
    # mixed-250M) 0.05 s more than to memory, noise of the disk, not work
    # of the tool (bench/README.md).
    os.makedirs(dirs, exist_ok=True)
    out = os.path.join(dirs, tool.key + ".out")
    err = os.path.join(dirs, tool.key + ".err")
    rssf = os.path.join(dirs, tool.key + ".rss")
    d = os.path.join(dirs, tool.key + ".dir")
    shutil.rmtree(d, ignore_errors=True)
    if tool.outdir:
        os.makedirs(d, exist_ok=True)
    argv = tool.command(capture, d)
    if os.access(TIME, os.X_OK):
        argv = [TIME, "-f", "%M", "-o", rssf] + argv
    env = dict(os.environ, LC_ALL="C")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=env,
                             start_new_session=True)
        # A blocking wait, and a timer for the timeout: polling woke this
        # process every 2 ms on one of the two cores the tool runs on.
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, 9)  # the tool and GNU time: a session of their own
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        pid, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        timed_out = bool(killed)
    p.returncode = os.waitstatus_to_exitcode(status)
    rss = None if timed_out else ru.ru_maxrss
    if argv[0] == TIME and not timed_out:
        try:
            with open(rssf) as f:
                nums = [int(x) for x in f.read().split() if x.isdigit()]
            rss = nums[-1] if nums else rss
        except OSError:
            pass
    return {"wall": wall, "rss_kib": rss, "rc": p.returncode, "timeout": timed_out,
            "out": out, "err": err, "dir": d, "argv": argv, "rssf": rssf}


# The floor pinned to each core, before every round: {label: [{cpu: s}, ...]}.
# On this shared VM one core at times ran everything 1.2 to 2 times slower
# than the other, for minutes (bench/README.md, "Unequal cores").  The floor,
# one thread, can run on the faster core; mailtap's default mode and
# --workers 2 run on both, so such a round moves their ratios to the floor
# and to --workers 1.  RESULTS.md shows it.
CORE_ROUNDS = {}
UNEQUAL = 1.10  # a round whose slower core took this much longer is "unequal"


def core_check(floor, capture):
    """Runs the floor on capture pinned to each core in turn (this process's
    affinity, which the child inherits, then restored): -> {cpu: seconds}."""
    mine = os.sched_getaffinity(0)
    out = {}
    try:
        for c in sorted(mine):
            os.sched_setaffinity(0, {c})
            t0 = time.perf_counter()
            subprocess.run([floor, capture], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            out[c] = time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, mine)
    return out


def core_spread(check):
    """The slower core's time over the faster's, for one check."""
    return max(check.values()) / min(check.values()) if len(check) > 1 and min(check.values()) > 0 else 1.0


def bench(tools, capture, args, work, label, runs=None):
    """Runs every tool args.runs times (or runs), interleaved (run 1 of every
    tool, then run 2, ...), so that a slow moment of the shared machine hits
    them all.  -> {key: result dict}"""
    return bench_many([(label, tools, capture)], args, work, runs)[label]


def bench_many(groups, args, work, runs=None):
    """Like bench, for several captures at once: groups is a list of
    (label, tools, capture), and every round runs each group's tools on its
    capture in turn, so that a ratio between captures (the scaling section's
    seconds per GB) is measured at the same moments too, not one capture a
    minute after the other.  -> {label: {key: result dict}}"""
    runs = runs or args.runs
    os.makedirs(work, exist_ok=True)
    # Warm the page cache: every tool then reads the capture from memory.
    for _label, _tools, capture in groups:
        with open(capture, "rb") as f:
            while f.read(8 * MIB):
                pass
    allres = {label: {t.key: {"tool": t, "runs": [], "note": None} for t in tools}
              for label, tools, _capture in groups}
    floor = next((t for _l, tools, _c in groups for t in tools if t.key == "floor"), None)
    for r in range(runs):
        if floor is not None:
            check = core_check(floor.argv[0], groups[0][2])
            log("round %d/%d cores: %s" % (r + 1, runs, "  ".join(
                "cpu%d %.2f s" % (c, v) for c, v in sorted(check.items()))))
            for label, _tools, _capture in groups:
                CORE_ROUNDS.setdefault(label, []).append(check)
        for label, tools, capture in groups:
            res = allres[label]
            for t in tools:
                st = res[t.key]
                if st["note"]:
                    continue
                x = run_once(t, capture, args.timeout, args.dirs)
                log("%s run %d/%d %-28s %7.2f s %7s MiB%s" % (
                    label, r + 1, runs, t.label, x["wall"],
                    "%.1f" % (x["rss_kib"] / 1024) if x["rss_kib"] is not None else "?",
                    " TIMEOUT" if x["timeout"] else (" rc=%d" % x["rc"] if x["rc"] else "")))
                if x["timeout"]:
                    st["note"] = "timed out after %d s (not run again)" % args.timeout
                    st["runs"].append(x)
                    st["found"] = safe_count(t, x)
                elif x["rc"] != 0:
                    tail = open(x["err"], "rb").read()[-300:].decode("utf-8", "replace").strip()
                    st["note"] = "exit status %d: %s" % (x["rc"], tail.splitlines()[-1] if tail else "")
                    st["runs"].append(x)
                    st["found"] = safe_count(t, x)
                else:
                    st["runs"].append(x)
                    if r == runs - 1 or "found" not in st:
                        st["found"] = safe_count(t, x)
                # Outputs can be large: keep only the last run's.
                if t.outdir and r < runs - 1:
                    shutil.rmtree(x["dir"], ignore_errors=True)
    for label, tools, _capture in groups:
        finish(allres[label], tools)
    return allres


def finish(res, tools):
    """Medians of the runs; the outputs removed."""
    for t in tools:
        st = res[t.key]
        ok = [x for x in st["runs"] if not x["timeout"]]
        if ok:
            st["wall"] = statistics.median(x["wall"] for x in ok)
            st["rss"] = statistics.median(x["rss_kib"] for x in ok) / 1024
            st["walls"] = [x["wall"] for x in ok]
        else:
            st["wall"] = None
            st["rss"] = None
        for x in st["runs"]:
            shutil.rmtree(x["dir"], ignore_errors=True)
            for p in (x["out"], x["err"], x["rssf"]):
                try:
                    os.remove(p)
                except OSError:
                    pass


def safe_count(tool, x):
    try:
        return tool.counter(x["out"], x["dir"])
    except Exception as e:  # a parser must not lose the timings
        log("could not count the output of %s: %s" % (tool.label, e))
        return {"sessions": None, "messages": None, "credentials": None}


# --------------------------------------------------------------- captures


def generate(profile, args, size=None, sessions=None, concurrency=None, name=None):
    """Makes (or reuses) a capture with gen.py -> (path, truth dict)."""
    cmd = [sys.executable, os.path.join(HERE, "gen.py"), profile, "--out", args.data, "--seed", str(args.seed)]
    if size:
        cmd += ["--size", size]
    if sessions:
        cmd += ["--sessions", str(sessions)]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    if name:
        cmd += ["--name", name]
    log("generating: " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True)
    import gen  # same directory
    name = name or "%s-%s" % (profile, gen.size_label(gen.parse_size(size)) if size else str(sessions))
    path = os.path.join(args.data, name + ".pcap")
    with open(os.path.join(args.data, name + ".json"), encoding="utf-8") as f:
        truth = json.load(f)
    truth["gen_cmd"] = "bench/gen.py " + " ".join(cmd[2:]).replace(args.data, os.path.relpath(args.data, ROOT))
    return path, truth


# Peak RSS bound for sessions open at once (docs/caps.md, "Many open
# sessions"): a base, a cost per open session, and zlib's state for each
# session inflating IMAP COMPRESS (at most inflate_max of them).
OPEN_BASE_MIB = 64
OPEN_SESSION_KIB = 4
OPEN_INFLATE_KIB = 80


def open_bound(truth, inflate_max):
    """-> (bound in MiB, how it is made) for a capture whose sessions are all
    open at once; inflate_max: the mailtap's cap (None: a build without it)."""
    n = truth["sessions"]["total"]
    z = sum(v["instances"] for k, v in truth.get("per_template", {}).items() if k == "imap-compress")
    if inflate_max is not None:
        z = min(z, inflate_max)
    mib = OPEN_BASE_MIB + (n * OPEN_SESSION_KIB + z * OPEN_INFLATE_KIB) / 1024.0
    return mib, ("%d MiB + %d KiB for each of the %s sessions + %d KiB for each of the %s inflating "
                 "IMAP COMPRESS = %.0f MiB" % (OPEN_BASE_MIB, OPEN_SESSION_KIB, fmt_n(n), OPEN_INFLATE_KIB,
                                               fmt_n(z), mib))


# ---------------------------------------------------------------- report


def fmt_s(v):
    if v is None:
        return "–"
    return "%.2f" % v if v < 100 else "%.0f" % v


def fmt_n(v):
    return "–" if v is None else "{:,}".format(v)


def found_cell(found, key, truth):
    v = (found or {}).get(key)
    if v is None:
        return "n/a"
    t = truth
    if t:
        # rounded down, so that 720 of 721 does not read as 100 %
        pct = math.floor(1000.0 * v / t) / 10
        return "%s (%s%%)" % (fmt_n(v), ("%.1f" % pct).rstrip("0").rstrip("."))
    return fmt_n(v)


def tool_table(res, truth, floor_key="floor", show_found=True):
    size = truth["bytes"]
    pkts = truth["packets"]
    fl = res.get(floor_key, {}).get("wall")
    head = "| tool | wall (median) | MB/s | packets/s | peak RSS | × floor |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if show_found:
        head += " sessions | messages | credentials |"
        sep += "---:|---:|---:|"
    lines = [head, sep]
    if show_found:
        lines.append("| **ground truth** (gen.py) | | | | | | **%s** | **%s** | **%s** |" % (
            fmt_n(truth["sessions"]["total"]), fmt_n(truth["messages"]), fmt_n(truth["credentials"])))
    notes = []
    for key, st in res.items():
        t = st["tool"]
        w = st.get("wall")
        if w is None and st.get("skipped"):
            row = "| %s | skipped | | | | |" % t.label
            if show_found:
                row += " | | |"
            lines.append(row)
            notes.append("%s: %s" % (t.label, st["skipped"]))
            continue
        wall = "%s s" % fmt_s(w) if w is not None else "> %d s" % st["runs"][0]["wall"]
        mbs = "%.0f" % (size / 1e6 / w) if w else "–"
        pps = "{:,.0f}".format(pkts / w) if w else "–"
        rss = "%.1f MiB" % st["rss"] if st.get("rss") is not None else "–"
        ratio = "%.1f" % (w / fl) if (w and fl) else "–"
        row = "| %s | %s | %s | %s | %s | %s |" % (t.label, wall, mbs, pps, rss, ratio)
        if show_found:
            f = st.get("found")
            row += " %s | %s | %s |" % (found_cell(f, "sessions", truth["sessions"]["total"]),
                                         found_cell(f, "messages", truth["messages"]),
                                         found_cell(f, "credentials", truth["credentials"]))
        lines.append(row)
        if st.get("note"):
            notes.append("%s: %s" % (t.label, st["note"]))
    return "\n".join(lines), notes


def cores_line(label):
    """What the core checks of a section's rounds found, as a sentence."""
    checks = CORE_ROUNDS.get(label)
    if not checks:
        return None
    cpus = sorted(checks[0])
    times = "; ".join("cpu%d %s s" % (c, ", ".join("%.3f" % ch[c] if c in ch else "–" for ch in checks))
                      for c in cpus)
    uneq = ["%d (%.2fx)" % (i + 1, core_spread(ch)) for i, ch in enumerate(checks)
            if core_spread(ch) >= UNEQUAL]
    line = ("Cores: the floor pinned to each core in turn before each round (rounds 1 to %d): %s. "
            % (len(checks), times))
    if uneq:
        line += ("One core was %.2fx or more slower than the other in round %s: there the floor "
                 "can have run on the faster core, while mailtap's default mode and `--workers 2` "
                 "ran on both." % (UNEQUAL, ", ".join(uneq)))
    else:
        line += "The cores were equal (within %.2fx) in every round." % UNEQUAL
    return line


def equal_rounds_ratio(res, label, num, den):
    """The median over the rounds whose cores were equal of num's wall over
    den's in the same round: -> (ratio or None, rounds used, rounds)."""
    checks = CORE_ROUNDS.get(label, [])
    a = res.get(num, {}).get("runs", [])
    b = res.get(den, {}).get("runs", [])
    if not checks or len(a) != len(checks) or len(b) != len(checks):
        return None, 0, len(checks)
    rs = [x["wall"] / y["wall"] for ch, x, y in zip(checks, a, b)
          if core_spread(ch) < UNEQUAL and not x["timeout"] and not y["timeout"] and y["wall"] > 0]
    return (statistics.median(rs) if rs else None), len(rs), len(checks)


def ratio_cell(value, res, label, num, den):
    """A target's measured ratio, and when some rounds had unequal cores, the
    same ratio over the rounds that had not (for reading; the verdict stays
    on all rounds)."""
    eq, used, total = equal_rounds_ratio(res, label, num, den)
    if total and used < total:
        if eq is None:
            return "%.2f x (unequal cores in every round)" % value
        return "%.2f x (%.2f x in the %d of %d rounds with equal cores)" % (value, eq, used, total)
    return "%.2f x" % value


def commands_list(res, mailtap):
    out = []
    for key, st in res.items():
        if st.get("skipped"):
            continue
        out.append("- %s: `%s`" % (st["tool"].label, st["tool"].display(mailtap)))
    return "\n".join(out)


def cpu_desc(cpuinfo):
    """The CPU as /proc/cpuinfo's first processor gives it, with its family,
    model and clock: a virtual machine's "model name" can be the same
    ("AMD EPYC") on hosts whose speeds differ by 2x (bench/README.md), and
    the ratios move with the host.  None when there is no model name."""
    def field(name):
        m = re.search(r"^%s\s*:\s*(.*?)\s*$" % re.escape(name), cpuinfo, re.M)
        return m.group(1) if m else None
    name = field("model name")
    if not name:
        return None
    extra = []
    family, model = field("cpu family"), field("model")
    if family and model:
        extra.append("family %s, model %s" % (family, model))
    mhz = field("cpu MHz")
    try:
        extra.append("%.0f MHz" % float(mhz))
    except (TypeError, ValueError):
        pass
    flags = (field("flags") or "").split()
    if "hypervisor" in flags:
        extra.append("virtual")
    return "%s (%s)" % (name, ", ".join(extra)) if extra else name


def machine_info():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = cpu_desc(f.read()) or platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        info["mem"] = "%.1f GiB" % (kb / 1024 / 1024)
    except (OSError, AttributeError):
        info["mem"] = "?"
    info["kernel"] = "%s %s" % (platform.system(), platform.release())
    try:
        with open("/etc/debian_version") as f:
            info["os"] = "Debian " + f.read().strip()
    except OSError:
        info["os"] = platform.platform()
    info["load"] = "%.2f %.2f %.2f" % os.getloadavg()
    return info


def version_of(argv, rx=None):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    if rx:
        m = re.search(rx, text, re.M)
        return m.group(1) if m else None
    return text.strip().splitlines()[0] if text.strip() else None


def malloc_of(mailtap):
    """The malloc mailtap says it runs on (its -V's second line), or None."""
    return version_of([mailtap, "-V"], r"^(malloc: .+)$")


def dpkg_version(pkg):
    """The installed version of a Debian package, or None.  dpkg-query -W
    exits 1 and prints only an error for a package it does not know."""
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(rb"(\S+)", p.stdout)
    return m.group(1).decode() if p.returncode == 0 and m else None


# ----------------------------------------------------------------- plot


def plot(path, sections):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [s for s in ("compare", "scaling") if s in sections]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.8), squeeze=False)
    axes = axes[0]
    i = 0
    if "compare" in sections:
        res, truth = sections["compare"]
        # Tools that timed out are drawn at the timeout, hatched.
        items = []
        for st in res.values():
            if st.get("wall"):
                items.append((st["tool"].label, st["wall"], False))
            elif st.get("runs") and st["runs"][0].get("timeout"):
                items.append((st["tool"].label, st["runs"][0]["wall"], True))
        ax = axes[i]
        i += 1
        names = [n for n, _, _ in items]
        walls = [w for _, w, _ in items]
        colors = ["#4c72b0" if n.startswith("mailtap") else "#999999" if n.startswith("floor") else "#dd8452"
                  for n in names]
        bars = ax.barh(range(len(items)), walls, color=colors)
        for bar, (_, _, to) in zip(bars, items):
            if to:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(right=max(walls) * 6)  # room for the labels
        ax.set_xlabel("wall time, s (log scale; median)")
        ax.set_title("%s: %.0f MB, %s packets" % (truth["file"], truth["bytes"] / 1e6,
                                                   "{:,}".format(truth["packets"])))
        for y, (_, w, to) in enumerate(items):
            ax.text(w, y, " > %.0f s (timed out)" % w if to else " %.2f s" % w, va="center", fontsize=8)
    if "scaling" in sections:
        rows = sections["scaling"]
        ax = axes[i]
        xs = [r["bytes"] / 1e6 for r in rows if r.get("wall")]
        ax.plot(xs, [r["wall"] for r in rows if r.get("wall")], "o-", color="#4c72b0",
                label="mailtap --json wall (s)")
        ax.plot(xs, [r["floor"] for r in rows if r.get("wall")], "o--", color="#999999",
                label="floor wall (s)")
        ax.set_xlabel("capture size, MB")
        ax.set_ylabel("seconds")
        ax2 = ax.twinx()
        ax2.plot(xs, [r["rss"] for r in rows if r.get("wall")], "s-", color="#c44e52",
                 label="mailtap peak RSS (MiB)")
        ax2.set_ylabel("peak RSS, MiB")
        ax2.set_ylim(0, max(64, max([r["rss"] for r in rows if r.get("rss")] or [0]) * 1.2))
        ax2.axhline(64, color="#c44e52", linestyle=":", linewidth=1)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        ax.set_title("scaling: mailtap --json on mixed captures")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


# ------------------------------------------------------------------ main


def find_mailtap(args):
    if args.build:
        src = os.path.join(BUILD, "src")
        bld = os.path.join(BUILD, "cmake")
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        log("building mailtap from HEAD %s (git archive, release flags) in %s" % (rev[:12], bld))
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        arch = subprocess.Popen(["git", "-C", ROOT, "archive", "HEAD"], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", src], stdin=arch.stdout, check=True)
        arch.wait()
        subprocess.run(["cmake", "-S", src, "-B", bld, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DBUILD_TESTING=OFF", "-DMAILTAP_PLUGIN=OFF"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", bld, "--target", "mailtap", "-j", "2"], check=True,
                       stdout=subprocess.DEVNULL)
        return os.path.join(bld, "mailtap"), "HEAD %s, built by run.py --build (RelWithDebInfo: -O2 -g)" % rev[:12]
    path = args.mailtap or os.path.join(ROOT, "build", "mailtap")
    if not os.access(path, os.X_OK):
        sys.exit("run: no mailtap at %s: build it (cmake -S . -B build && cmake --build build), "
                 "or pass --mailtap PATH or --build" % path)
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(path)).strftime("%Y-%m-%d %H:%M")
    return os.path.abspath(path), "%s (built %s)" % (os.path.relpath(path, ROOT), mtime)


def build_floor():
    os.makedirs(BUILD, exist_ok=True)
    exe = os.path.join(BUILD, "floor")
    src = os.path.join(HERE, "floor.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", exe, src, "-lpcap"], check=True)
    return exe


def install(names):
    pkgs = sorted({PACKAGES[n] for n in names if n in PACKAGES})
    if not pkgs:
        return
    if os.geteuid() != 0:
        log("--install needs root; not installing %s" % " ".join(pkgs))
        return
    log("apt-get install -y " + " ".join(pkgs))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq"] + pkgs, env=env)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true", help="small captures, for a sanity run")
    ap.add_argument("--only", default="compare,large,short,scaling,workers",
                    help="comma-separated sections (default: all)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each tool (default 3; medians reported)")
    ap.add_argument("--size", help="size of the mixed capture of compare/workers (default 250M, quick 50M)")
    ap.add_argument("--timeout", type=int, default=0,
                    help="seconds before a run is stopped and the tool not run again (default 180, quick 60)")
    ap.add_argument("--mailtap", help="mailtap binary (default build/mailtap)")
    ap.add_argument("--build", action="store_true",
                    help="build mailtap from the committed HEAD into bench/build/cmake and use it")
    ap.add_argument("--install", action="store_true", help="apt-get install the missing tools (root)")
    ap.add_argument("--data", default=os.path.join(HERE, "data"), help="where captures go (bench/data)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--results", help="Markdown output (default bench/RESULTS.md; quick: bench/build/RESULTS-quick.md)")
    ap.add_argument("--delete-data", action="store_true", help="delete the captures at the end")
    ap.add_argument("--dir", help="where the tools write their DIR (default: /dev/shm when it is a "
                    "tmpfs with 4 GB free, else bench/build/work)")
    args = ap.parse_args(argv)

    quick = args.quick
    size = args.size or ("50M" if quick else "250M")
    args.timeout = args.timeout or (60 if quick else 180)
    results = args.results or (os.path.join(BUILD, "RESULTS-quick.md") if quick
                               else os.path.join(HERE, "RESULTS.md"))
    png = os.path.splitext(results)[0].replace("RESULTS", "results") + ".png"
    if os.path.basename(results) == "RESULTS.md" and os.path.dirname(os.path.abspath(results)) == HERE:
        png = os.path.join(HERE, "results.png")
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - {"compare", "large", "short", "scaling", "workers"}
    if unknown:
        sys.exit("run: unknown section(s): %s" % ", ".join(sorted(unknown)))
    sys.path.insert(0, HERE)

    if args.install:
        missing = [n for n in ("tshark", "dsniff", "mailsnarf", "tcpflow", "gcc") if not which(n)]
        if not os.path.exists("/usr/bin/time"):
            missing.append("/usr/bin/time")
        try:
            import matplotlib  # noqa: F401  (the plot; run.sh picks a python3 that has it)
        except ImportError:
            missing.append("matplotlib")
        install(missing)
        # run.sh picked this interpreter before matplotlib was installed:
        # go on under Debian's python3 if that one has it now (the plot).
        sysp = "/usr/bin/python3"
        if ("matplotlib" in missing and os.path.realpath(sys.executable) != os.path.realpath(sysp)
                and subprocess.run([sysp, "-c", "import matplotlib"],
                                   capture_output=True).returncode == 0):
            log("matplotlib installed: going on under %s" % sysp)
            rest = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--install"]
            os.execv(sysp, [sysp, os.path.abspath(__file__)] + rest)

    started = datetime.datetime.now(datetime.timezone.utc)
    mach = machine_info()
    mailtap, mailtap_desc = find_mailtap(args)
    floor = build_floor()
    tools = make_tools(mailtap, floor)
    helptext = version_of([mailtap, "--help"]) and subprocess.run(
        [mailtap, "--help"], capture_output=True, text=True).stdout
    has_workers = "--workers" in (helptext or "")
    work = os.path.join(BUILD, "work")
    shutil.rmtree(work, ignore_errors=True)
    args.dirs, dirs_desc = dir_base(args, work)
    # The scaling and workers targets are ratios of mailtap to itself, and a
    # slow minute of the machine moves one median of three: at least 5 runs
    # there (a few seconds each).
    ratio_runs = max(args.runs, 5)

    def available(keys):
        sel, skipped = [], {}
        for k in keys:
            t = tools[k]
            if (k.startswith("workers") and not has_workers):
                skipped[k] = "`mailtap --help` does not list --workers yet"
            elif not (os.path.exists(t.needs) or which(t.needs)):
                skipped[k] = "%s is not installed (Debian package %s; run.sh --install)" % (
                    t.needs, PACKAGES.get(t.needs, t.needs))
            else:
                sel.append(t)
        return sel, skipped

    def with_skips(res, skipped):
        out = dict(res)
        for k, why in skipped.items():
            out[k] = {"tool": tools[k], "skipped": why, "runs": []}
        order = list(tools)
        return {k: out[k] for k in order if k in out}

    sections = {}
    captures = {}

    if "compare" in only or "workers" in only:
        mixed, mtruth = generate("mixed", args, size=size)
        captures[mtruth["file"]] = mtruth
    if "compare" in only:
        sel, skipped = available(["floor", "text", "json", "json-x", "tshark-cred", "tshark-fields",
                                  "dsniff", "mailsnarf", "tcpflow"])
        res = with_skips(bench(sel, mixed, args, work, "compare"), skipped)
        sections["compare"] = (res, mtruth)
    if "large" in only:
        lcap, ltruth = generate("large", args, size="50M" if quick else "250M")
        captures[ltruth["file"]] = ltruth
        sel, skipped = available(["floor", "json", "json-x"])
        sections["large"] = (with_skips(bench(sel, lcap, args, work, "large"), skipped), ltruth)
    if "short" in only:
        scap, struth = generate("short", args, sessions=10000 if quick else 100000)
        captures[struth["file"]] = struth
        sel, skipped = available(["floor", "json"])
        sections["short"] = (with_skips(bench(sel, scap, args, work, "short"), skipped), struth)
        # the same sessions, all open at once: what each open session costs
        n = 10000 if quick else 100000
        ocap, otruth = generate("short", args, sessions=n, concurrency=n, name="short-%d-open" % n)
        captures[otruth["file"]] = otruth
        sections["open"] = (with_skips(bench(sel, ocap, args, work, "open"), skipped), otruth)
    if "scaling" in only:
        rows, groups, made = [], [], []
        sel, _ = available(["floor", "json"])
        for sz in (("25M", "50M", "100M") if quick else ("250M", "500M", "1G")):
            cap, tr = generate("mixed", args, size=sz)
            captures[tr["file"]] = tr
            groups.append(("scaling " + sz, sel, cap))
            made.append(tr)
        # the three sizes in turn in every round (bench_many): the ratio of
        # their seconds per GB is then not that of two different minutes
        allr = bench_many(groups, args, work, ratio_runs)
        for (label, _sel, _cap), tr in zip(groups, made):
            r = allr[label]
            j = r.get("json", {})
            rows.append({"label": label, "file": tr["file"], "bytes": tr["bytes"], "packets": tr["packets"],
                         "sessions": tr["sessions"]["total"], "wall": j.get("wall"), "rss": j.get("rss"),
                         "floor": r.get("floor", {}).get("wall"), "found": j.get("found"),
                         "truth": tr, "walls": j.get("walls")})
        sections["scaling"] = rows
    if "workers" in only:
        sel, skipped = available(["floor", "workers1", "json", "workers2"])
        res = with_skips(bench(sel, mixed, args, work, "workers", ratio_runs), skipped)
        sections["workers"] = (res, mtruth)

    # ------------------------------------------------------------ report
    finished = datetime.datetime.now(datetime.timezone.utc)
    cmdline = "bench/run.sh" + ("".join(" " + shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])))
    md = ["# mailtap benchmark results", "",
          "Regenerated by `%s` (%s to %s UTC). Do not edit by hand: see bench/README.md."
          % (cmdline, started.strftime("%Y-%m-%d %H:%M"), finished.strftime("%H:%M")), ""]
    md += ["## Machine", "",
           "- %s, %d cores, %s memory; %s, %s; load average at the start %s "
           "(a shared machine: absolute times drift, ratios hold)" % (
               mach["cpu"], mach["cores"], mach["mem"], mach["os"], mach["kernel"], mach["load"]),
           "- mailtap: %s, `%s`" % (mailtap_desc, version_of([mailtap, "-V"]) or "?")
           + ("; %s" % malloc_of(mailtap) if malloc_of(mailtap) else ""),
           "- floor: bench/floor.c, `gcc -O2 -lpcap`, libpcap %s" % (dpkg_version("libpcap0.8") or "?"),
           "- tshark %s, dsniff %s, tcpflow %s" % (
               dpkg_version("tshark") or "not installed", dpkg_version("dsniff") or "not installed",
               dpkg_version("tcpflow") or "not installed"),
           "- %d run(s) of each tool per capture (%d in the scaling and workers sections), interleaved; "
           "medians; capture in the page cache; "
           "standard output to a file beside the tools' `DIR`, then parsed to count what the tool "
           "found; the tools' `DIR` %s"
           % (args.runs, ratio_runs, dirs_desc),
           "- before each round, the floor pinned to each core in turn (a round with one core %.2fx "
           "or more slower than the other is named under its section; see bench/README.md, "
           "\"Unequal cores\")" % UNEQUAL, ""]
    md += ["## Captures", "",
           "Made by `bench/gen.py` (seed %d) from the recorded samples; the ground truth is the golden "
           "tests' count for each sample times its copies." % args.seed, "",
           "| capture | size | packets | sessions (smtp/pop3/imap) | messages | credentials | made by |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for name, tr in captures.items():
        s = tr["sessions"]
        md.append("| %s | %.1f MB | %s | %s (%s/%s/%s) | %s | %s | `%s` |" % (
            name, tr["bytes"] / 1e6, fmt_n(tr["packets"]), fmt_n(s["total"]), fmt_n(s.get("smtp")),
            fmt_n(s.get("pop3")), fmt_n(s.get("imap")), fmt_n(tr["messages"]), fmt_n(tr["credentials"]),
            tr["gen_cmd"]))
    md.append("")
    all_notes = []
    for name, tr in captures.items():
        for n in tr.get("notes", []):
            all_notes.append("gen.py (%s): %s" % (name, n))

    def add_cores(label):
        """The section's Cores line (cores_line), when its rounds were checked."""
        line = cores_line(label)
        if line:
            md.extend([line, ""])

    def tool_section(title, key, intro):
        res, tr = sections[key]
        table, notes = tool_table(res, tr)
        md.extend(["## " + title, "", intro % {"file": tr["file"], "mb": tr["bytes"] / 1e6}, "", table, ""])
        add_cores(key)
        md.append("Commands (`F` the capture, `DIR` a fresh directory):")
        md.append("")
        md.append(commands_list(res, mailtap))
        md.append("")
        for n in notes:
            md.append("- Note: " + n)
        if notes:
            md.append("")
        return res, tr

    targets = []
    if "compare" in sections:
        res, tr = tool_section("Tools on one capture", "compare",
                               "All tools on `%(file)s` (%(mb).0f MB of interleaved SMTP/POP3/IMAP sessions).")
        fl, js = res.get("floor", {}).get("wall"), res.get("json", {}).get("wall")
        ts = res.get("tshark-cred", {}).get("wall")
        if fl and js:
            targets.append(("`--json` within 2x of the floor",
                            ratio_cell(js / fl, res, "compare", "json", "floor"), js / fl <= 2.0))
        if ts and js:
            targets.append(("at least 20x faster than `tshark -q -z credentials`", "%.1f x" % (ts / js),
                            ts / js >= 20.0))
        elif js and res.get("tshark-cred", {}).get("runs"):
            x = res["tshark-cred"]["runs"][0]
            targets.append(("at least 20x faster than `tshark -q -z credentials`",
                            "> %.1f x (tshark timed out)" % (x["wall"] / js), x["wall"] / js >= 20.0))
    if "large" in sections:
        tool_section("Large attachments", "large",
                     "`%(file)s` (%(mb).0f MB): a few SMTP sessions, each a message of about 5 MB "
                     "with a binary attachment, so Base64 decoding, hashing and extraction dominate.")
    if "short" in sections:
        res, tr = tool_section("Many short sessions", "short",
                               "`%(file)s` (%(mb).0f MB): short sessions (logins, small messages), "
                               "1,000 open at once: peak RSS shows what the flow table costs.")
        j = res.get("json", {})
        if j.get("rss") is not None:
            targets.append(("peak RSS under 64 MiB, %s" % tr["file"], "%.1f MiB" % j["rss"], j["rss"] < 64))
    if "open" in sections:
        res, tr = tool_section("Many sessions open at once", "open",
                               "`%(file)s` (%(mb).0f MB): the same short sessions, all open at once "
                               "(each sends one packet per turn until every one has started).")
        j = res.get("json", {})
        cap = version_of([mailtap, "--list-caps"], r"^inflate_max\s+(\d+)")
        bound, why = open_bound(tr, int(cap) if cap else None)
        md += ["Documented bound (docs/caps.md, \"Many open sessions\"): %s." % why, ""]
        if j.get("rss") is not None:
            targets.append(("peak RSS with %s sessions open at once under the documented bound (%.0f MiB)"
                            % (fmt_n(tr["sessions"]["total"]), bound), "%.1f MiB" % j["rss"], j["rss"] < bound))
    if "scaling" in sections:
        rows = sections["scaling"]
        md += ["## Scaling", "",
               "`mailtap -q --no-summary --json -r F` on mixed captures of growing size: time should "
               "grow linearly, peak RSS stay flat. The three captures take turns in every round (the "
               "floor and mailtap on 250 MB, then on 500 MB, then on 1 GB), so that a slow moment of the "
               "machine falls on all sizes.", "",
               "| capture | size | packets | wall (median) | s per GB | MB/s | × floor | peak RSS | "
               "sessions | messages | credentials |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            tr, f = r["truth"], r.get("found") or {}
            w = r.get("wall")
            md.append("| %s | %.0f MB | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["file"], r["bytes"] / 1e6, fmt_n(r["packets"]), "%s s" % fmt_s(w) if w else "–",
                "%.2f" % (w / (r["bytes"] / 1e9)) if w else "–", "%.0f" % (r["bytes"] / 1e6 / w) if w else "–",
                "%.2f" % (w / r["floor"]) if (w and r.get("floor")) else "–",
                "%.1f MiB" % r["rss"] if r.get("rss") is not None else "–",
                found_cell(f, "sessions", tr["sessions"]["total"]), found_cell(f, "messages", tr["messages"]),
                found_cell(f, "credentials", tr["credentials"])))
            if r.get("rss") is not None and (r["file"].endswith("-250M.pcap") or r["file"].endswith("-1G.pcap")
                                             or quick):
                targets.append(("peak RSS under 64 MiB, %s" % r["file"], "%.1f MiB" % r["rss"], r["rss"] < 64))
        per_gb = [r["wall"] / (r["bytes"] / 1e9) for r in rows if r.get("wall")]
        if len(per_gb) >= 2:
            # linear: the time per GB of every size within 20 % of the others
            targets.append(("time linear in the size (s per GB from the smallest to the largest; "
                            "at most 1.2x apart)", "%.2f to %.2f" % (min(per_gb), max(per_gb)),
                            max(per_gb) <= 1.2 * min(per_gb)))
        md.append("")
        if rows:
            add_cores(rows[0]["label"])  # the sizes share their rounds' checks
    if "workers" in sections:
        res, tr = sections["workers"]
        table, notes = tool_table(res, tr)
        md += ["## Workers", "",
               "`--workers N` on `%s`: flows sharded over N threads (2 cores on this machine); "
               "`--workers 1` is one thread, and `mailtap --json` without `--workers` (the default) "
               "runs the reading thread and the message thread (cli/pipeline.h)." % tr["file"],
               "", table, ""]
        w1, w2 = res.get("workers1", {}).get("wall"), res.get("workers2", {}).get("wall")
        if w1 and w2:
            md += ["Speed-up with 2 workers: %.2f x." % (w1 / w2), ""]
            targets.append(("`--workers 2` at least 1.6x as fast as `--workers 1`",
                            ratio_cell(w1 / w2, res, "workers", "workers1", "workers2"), w1 / w2 >= 1.6))
        add_cores("workers")
        for n in notes:
            md.append("- Note: " + n)
        if notes:
            md.append("")
    if targets:
        md += ["## Targets (shared/PERFORMANCE.md)", "", "| target | measured | met |", "|---|---:|---|"]
        for name, val, ok in targets:
            md.append("| %s | %s | %s |" % (name, val, "yes" if ok else "**no**"))
        md.append("")
    if all_notes:
        md += ["## Notes", ""] + ["- " + n for n in all_notes] + [""]
    plotted = plot(png, sections)
    if plotted:
        md += ["![results](%s)" % os.path.relpath(png, os.path.dirname(os.path.abspath(results))), ""]
    else:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            md += ["No plot: python3-matplotlib is not installed (`--install` installs it).", ""]
        if os.path.exists(png):  # no plot of an older run beside these results
            os.remove(png)
    os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
    with open(results, "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    # the full run's raw timings in bench/build; another --results keeps
    # its own beside it, not overwriting those
    raw = (os.path.join(BUILD, "last-run.json") if os.path.abspath(results) == os.path.join(HERE, "RESULTS.md")
           else os.path.splitext(results)[0] + ".json")
    with open(raw, "w", encoding="utf-8") as f:
        json.dump(jsonable(sections), f, indent=1, default=str)
    print("\n".join(md))
    log("wrote %s%s (raw timings: %s)" % (results, " and " + png if plotted else "", raw))
    if args.delete_data:
        for name in captures:
            for ext in (".pcap", ".json"):
                try:
                    os.remove(os.path.join(args.data, os.path.splitext(name)[0] + ext))
                except OSError:
                    pass
    shutil.rmtree(work, ignore_errors=True)
    if args.dirs != work and not args.dir:
        shutil.rmtree(args.dirs, ignore_errors=True)
    return 0


def jsonable(sections):
    out = {}
    for k, v in sections.items():
        if isinstance(v, tuple):
            res, tr = v
            out[k] = {"capture": tr["file"], "tools": {
                kk: {"label": st["tool"].label, "walls": [x["wall"] for x in st.get("runs", [])],
                     "rss_kib": [x["rss_kib"] for x in st.get("runs", [])],
                     "found": st.get("found"), "note": st.get("note") or st.get("skipped")}
                for kk, st in res.items()}}
        else:
            out[k] = [{kk: vv for kk, vv in r.items() if kk != "truth"} for r in v]
    # the core checks before each round (CORE_ROUNDS), seconds by core
    out["cores"] = {label: [{"cpu%d" % c: t for c, t in sorted(ch.items())} for ch in checks]
                    for label, checks in CORE_ROUNDS.items()}
    return out


if __name__ == "__main__":
    sys.exit(main())
