#!/usr/bin/env python3
"""mailtap's live capture against real servers and real clients (issue 5).

  test_live.py [--mailtap BIN] [--samples DIR] [--keep]

Two network namespaces of this run's own (names carry the PID) joined by a
veth pair; samples/servers/smtpd.py (aiosmtpd) and Dovecot (IMAP + POP3, with
samples/servers/dovecot.conf.in) in the server one, mailtap capturing on its
veth end, real clients (tests/live/live_client.py: smtplib, poplib, imaplib;
swaks) in the other.  See tests/live/README.md.  Needs root; prints
"SKIP: <reason>" and exits 0 where namespaces cannot be made or the servers
are not installed.  Every wait is bounded; the whole run takes ~10-20 s.
"""
import argparse
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SYS_PY = "/usr/bin/python3"          # Debian's, the one python3-aiosmtpd is for
SRV4, CLI4 = "10.98.0.1", "10.98.0.2"
PW = "Wonderland-2024"

PASSES, FAILS = [0], []


class Interrupted(BaseException):
    """SIGTERM/SIGINT/SIGHUP (e.g. ctest's timeout): clean up, count a failure."""
PROCS = []            # Popen objects we started (killed in cleanup)
STATE = {"ns": [], "work": None, "dovecot_pid": None, "keep": False}


def log(*a):
    print(*a, flush=True)


def check(cond, what, detail=None):
    if cond:
        PASSES[0] += 1
        log("ok  ", what)
    else:
        FAILS.append(what)
        log("FAIL", what)
        if detail is not None:
            for line in str(detail).splitlines()[:40]:
                log("     |", line)
    return cond


def skip(reason):
    log("SKIP: " + reason)
    sys.exit(0)


# ------------------------------------------------------------------ helpers
def sh(args, timeout=15, check_rc=True, **kw):
    r = subprocess.run(args, capture_output=True, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s: rc=%d: %s" % (" ".join(args), r.returncode,
                                             r.stderr.decode("utf-8", "replace").strip()))
    return r


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns] + list(args)


def wait_for(pred, timeout, step=0.05):
    """Poll pred() until it returns something true or timeout seconds pass."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(step)


def read_events(path):
    """Complete JSON lines written so far (a partial last line is left out)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"type": "_unparsable", "line": line.decode("utf-8", "replace")})
    return out


def readline_timeout(pipe, timeout):
    end = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([pipe], [], [], left)
        if not r:
            return None
        c = os.read(pipe.fileno(), 1)
        if not c:
            return buf.decode("utf-8", "replace") if buf else None
        buf += c
    return buf.decode("utf-8", "replace")


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
    except OSError as e:
        return str(e)


def stop(p, sig=signal.SIGTERM, timeout=5):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


# ------------------------------------------------------------------ set-up
def preflight(mailtap, samples):
    # dovecot, ip and ss live in /usr/sbin, which a non-login PATH may lack
    path = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    os.environ["PATH"] = os.pathsep.join(path + [d for d in ("/usr/sbin", "/sbin")
                                                 if d not in path])
    if os.geteuid() != 0:
        skip("not root: network namespaces need root")
    if not shutil.which("ip"):
        skip("no ip(8) (Debian package iproute2)")
    if not os.access(mailtap, os.X_OK):
        log("FAIL mailtap binary not found: %s" % mailtap)
        sys.exit(1)
    missing = []
    if not (os.access(SYS_PY, os.X_OK) and subprocess.run(
            [SYS_PY, "-c", "import aiosmtpd"], capture_output=True).returncode == 0):
        missing.append("python3-aiosmtpd")
    if not shutil.which("dovecot"):
        missing.append("dovecot-core")
    if not os.path.exists("/usr/lib/dovecot/imap"):
        missing.append("dovecot-imapd")
    if not os.path.exists("/usr/lib/dovecot/pop3"):
        missing.append("dovecot-pop3d")
    for tool, pkg in (("swaks", "swaks"), ("openssl", "openssl"), ("ss", "iproute2"),
                      ("setpriv", "util-linux")):
        if not shutil.which(tool):
            missing.append(pkg)
    if missing:
        skip("servers/clients not installed: apt-get install " + " ".join(missing))
    for f in ("servers/smtpd.py", "servers/dovecot.conf.in", "gen_messages.py"):
        if not os.path.exists(os.path.join(samples, f)):
            log("FAIL missing %s/%s" % (samples, f))
            sys.exit(1)


def sweep_stale():
    """Namespaces left by an earlier run that was SIGKILLed (e.g. by ctest's
    TIMEOUT): only mtl<PID>s / mtl<PID>c whose test_live.py is gone, and the
    processes it had started in them (its servers, mailtap, clients)."""
    import re
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        m = re.match(r"^(mtl(\d+)[sc])\b", line)
        if not m:
            continue
        try:
            with open("/proc/%s/cmdline" % m.group(2), "rb") as f:
                if b"test_live.py" in f.read():
                    continue                # that run is still going
        except OSError:
            pass
        pids = subprocess.run(["ip", "netns", "pids", m.group(1)], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True)
        import glob
        for d in glob.glob(os.path.join(tempfile.gettempdir(),
                                        "mailtap-live-%s-*" % m.group(2))):
            shutil.rmtree(d, ignore_errors=True)
        log("removed stale namespace %s (%d processes)" % (m.group(1), len(pids)))


def setup_net(srv, cli, srv_if, cli_if):
    r = subprocess.run(["ip", "netns", "add", srv], capture_output=True)
    if r.returncode != 0:
        skip("cannot create a network namespace: " + r.stderr.decode().strip())
    STATE["ns"].append(srv)
    sh(["ip", "netns", "add", cli])
    STATE["ns"].append(cli)
    sh(["ip", "link", "add", srv_if, "netns", srv, "type", "veth", "peer", "name", cli_if,
        "netns", cli])
    for ns, ifc, a4 in ((srv, srv_if, SRV4), (cli, cli_if, CLI4)):
        # no router solicitations / RAs: only our own traffic on the link
        sh(in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"), check_rc=False)
        sh(in_ns(ns, "ip", "link", "set", "lo", "up"))
        sh(in_ns(ns, "ip", "addr", "add", a4 + "/24", "dev", ifc))
        sh(in_ns(ns, "ip", "link", "set", ifc, "up"))
    ok = wait_for(lambda: sh(in_ns(cli, "ping", "-c1", "-W1", SRV4), check_rc=False)
                  .returncode == 0 if shutil.which("ping") else True, 10, 0.2)
    if not ok:
        raise RuntimeError("veth link never came up")


def wait_port(srv, port, timeout=15):
    return wait_for(lambda: sh(in_ns(srv, "ss", "-Hltn", "sport = :%d" % port),
                               check_rc=False).stdout.strip(), timeout, 0.1)


def start_servers(srv, samples, work):
    sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-keyout", work + "/key.pem", "-out", work + "/cert.pem",
        "-subj", "/CN=mail.example.test"], timeout=30)
    os.chmod(work + "/key.pem", 0o644)
    sh([SYS_PY, os.path.join(samples, "gen_messages.py"), work + "/msg"], timeout=30)

    # SMTP: aiosmtpd sample server (AUTH PLAIN/LOGIN/...), spool of received mail
    os.mkdir(work + "/spool")
    slog = open(work + "/smtpd.log", "wb")
    p = subprocess.Popen(in_ns(srv, SYS_PY, os.path.join(samples, "servers/smtpd.py"),
                               "--cert", work + "/cert.pem", "--key", work + "/key.pem",
                               "--spool", work + "/spool", "25"),
                         stdout=slog, stderr=subprocess.STDOUT)
    PROCS.append(p)

    # Dovecot: the samples' config, one user (alice) with one message
    os.makedirs(work + "/run")
    os.makedirs(work + "/state")
    with open(work + "/users", "w") as f:
        f.write("alice:{PLAIN}%s\n" % PW)
    with open(os.path.join(samples, "servers/dovecot.conf.in")) as f:
        conf = f.read()
    conf = (conf.replace("@WORK@", work).replace("@UID@", "nobody")
            .replace("@GID@", "nogroup"))
    with open(work + "/dovecot.conf", "w") as f:
        f.write(conf)
    md = work + "/mail/alice/Maildir"
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, d))
    shutil.copy(work + "/msg/mbox1.eml", md + "/cur/1715000001.M1P100.mail.example.test:2,S")
    sh(["chown", "-R", "nobody:nogroup", work + "/mail"])
    # daemonizes; its children keep what it had as stdout/stderr: not pipes
    with open(work + "/dovecot.out", "wb") as f:
        r = subprocess.run(in_ns(srv, "dovecot", "-c", work + "/dovecot.conf"), stdout=f,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("dovecot did not start:\n" + tail(work + "/dovecot.out"))
    pidf = work + "/run/dovecot/master.pid"
    if wait_for(lambda: os.path.exists(pidf), 10):
        with open(pidf) as f:
            STATE["dovecot_pid"] = int(f.read().strip())
    for port, name in ((25, "smtpd.py"), (110, "dovecot pop3"), (143, "dovecot imap")):
        if not wait_port(srv, port):
            raise RuntimeError("%s never listened on port %d:\n%s\n%s" % (
                name, port, tail(work + "/smtpd.log"), tail(work + "/dovecot.log")))


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                pass
    pid = STATE["dovecot_pid"]
    pidf = (STATE["work"] or "/nonexistent") + "/run/dovecot/master.pid"
    if not pid and os.path.exists(pidf):
        try:
            pid = int(open(pidf).read().strip())
        except ValueError:
            pid = None
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), 5)
        except ProcessLookupError:
            pass
    for ns in STATE["ns"]:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    w = STATE["work"]
    if w:
        if STATE["keep"] or FAILS:
            log("work dir kept: " + w)
        else:
            shutil.rmtree(w, ignore_errors=True)


# ------------------------------------------------------------------ mailtap
def start_mailtap(mailtap, srv, args, out, err):
    p = subprocess.Popen(in_ns(srv, mailtap) + args, stdout=open(out, "wb"),
                         stderr=open(err, "wb"))
    PROCS.append(p)
    ok = wait_for(lambda: p.poll() is not None or "capturing on" in open(err).read(), 10)
    if not ok or p.poll() is not None:
        raise RuntimeError("mailtap did not start (rc=%s):\n%s" % (p.poll(), tail(err)))
    return p


def client(cli, *args, timeout=30):
    r = sh(in_ns(cli, sys.executable, os.path.join(HERE, "live_client.py"), *args),
           timeout=timeout, check_rc=False)
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        return None, out + r.stderr.decode("utf-8", "replace")
    return json.loads(out.strip().splitlines()[-1]), out


def of_session(events, proto, cond=lambda e: True):
    return [e for e in events if e.get("proto") == proto and cond(e)]


def verbs(events, session):
    # verbs as sent; smtplib sends most of them in lower case ("mail FROM:")
    return [(e.get("verb") or "").upper() for e in events if e["type"] == "command" and e["session"] == session
            and not e.get("auth_data")]


def subseq(want, got):
    it = iter(got)
    return all(any(w == g for g in it) for w in want)


def check_session(events, exp, label):
    """Credential, commands and message of one client's session."""
    proto = exp["proto"]
    creds = of_session(events, proto, lambda e: e["type"] == "credential")
    if not check(len(creds) == 1, "%s: one %s credential" % (label, proto),
                 json.dumps(creds)):
        return
    c = creds[0]
    check((c.get("mechanism"), c.get("username"), c.get("password"), c.get("result")) ==
          (exp["mechanism"], exp["username"], exp["password"], "success"),
          "%s: %s credential = what the client sent (%s %s/%s)" % (
              label, proto, exp["mechanism"], exp["username"], exp["password"]), json.dumps(c))
    sid = c["session"]
    got = verbs(events, sid)
    if proto == "imap":
        ok = subseq(["LOGIN", "UID FETCH", "LOGOUT"], got) and got == exp["commands"]
    else:
        ok = got == exp["commands"]
    check(ok, "%s: %s commands %s" % (label, proto, exp["commands"]), "got %s" % got)
    msgs = [e for e in events if e["type"] == "message" and e["session"] == sid]
    check(len(msgs) == 1 and msgs[0].get("sha256") == exp["sha256"]
          and msgs[0].get("size") == exp["size"] and msgs[0].get("complete") is True,
          "%s: %s message sha256 = client's (%d bytes, %s...)" % (
              label, proto, exp["size"], exp["sha256"][:16]),
          json.dumps([{k: m.get(k) for k in ("source", "size", "sha256", "complete")}
                      for m in msgs]))
    sess = [e for e in events if e["type"] == "session" and e["session"] == sid]
    check(len(sess) == 1 and sess[0].get("complete") is True and sess[0].get("gap_count") == 0,
          "%s: %s session record complete, no gaps" % (label, proto), json.dumps(sess))
    return msgs


def essence(events):
    """What the -r replay must reproduce: commands, credentials, messages in order."""
    out = []
    for e in events:
        t = e.get("type")
        if t == "command":
            out.append(("command", e["session"], e["proto"], e.get("tag"), e.get("verb"),
                        e.get("arg")))
        elif t == "credential":
            out.append(("credential", e["session"], e["proto"], e.get("mechanism"),
                        e.get("username"), e.get("password"), e.get("result")))
        elif t == "message":
            out.append(("message", e["session"], e["proto"], e.get("source"), e.get("size"),
                        e.get("sha256")))
    return out


# ------------------------------------------------------------------ the test
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", default=os.path.join(TOP, "build", "mailtap"))
    ap.add_argument("--samples", default=os.path.join(TOP, "samples"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    mailtap, samples = os.path.abspath(a.mailtap), os.path.abspath(a.samples)
    STATE["keep"] = a.keep
    preflight(mailtap, samples)

    tag = "mtl%d" % os.getpid()          # <= 10 chars + 1: fits IFNAMSIZ
    srv, cli = tag + "s", tag + "c"
    srv_if, cli_if = tag + "s", tag + "c"
    def on_signal(n, f):
        raise Interrupted("signal %d" % n)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    t0 = time.monotonic()
    try:
        work = tempfile.mkdtemp(prefix="mailtap-live-%d-" % os.getpid())
        os.chmod(work, 0o755)          # dovecot's mail user (nobody) goes through it
        STATE["work"] = work
        sweep_stale()
        setup_net(srv, cli, srv_if, cli_if)
        start_servers(srv, samples, work)
        log("set-up done in %.1f s (namespaces %s/%s, work dir %s)"
            % (time.monotonic() - t0, srv, cli, work))
        run_tests(mailtap, srv, cli, srv_if, work)
    except Interrupted as e:
        check(False, "test ran to its end: interrupted by %s" % e)
    except Exception as e:              # set-up or a client broke: a failure, not a skip
        import traceback
        traceback.print_exc()
        check(False, "test ran to its end: %s" % e)
    finally:
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)    # let cleanup finish
        cleanup()
    log("took %.1f s" % (time.monotonic() - t0))
    log("%d passed, %d failed" % (PASSES[0], len(FAILS)))
    sys.exit(1 if FAILS else 0)


def run_tests(mailtap, srv, cli, srv_if, work):
    out, err, pcap = work + "/live.jsonl", work + "/live.err", work + "/live.pcap"

    # --- 1. live capture with -w, three real sessions ------------------------
    mt = start_mailtap(mailtap, srv, ["-i", srv_if, "--json", "-w", pcap], out, err)

    # SMTP: the client stops after AUTH until we have seen the credential event
    sc = subprocess.Popen(in_ns(cli, sys.executable, os.path.join(HERE, "live_client.py"),
                                "smtp", SRV4, work + "/msg/mime.eml"),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    PROCS.append(sc)
    line = readline_timeout(sc.stdout, 15)
    check(line == "AUTHED\n", "smtp client authenticated", line or sc.stderr.read1(4096))
    cred = wait_for(lambda: [e for e in read_events(out) if e.get("type") == "credential"
                             and e.get("proto") == "smtp"], 10)
    check(bool(cred), "smtp credential event printed while mailtap runs", tail(out))
    if cred:
        sid = cred[0]["session"]
        check(not [e for e in read_events(out) if e.get("type") == "session"
                   and e.get("session") == sid],
              "smtp credential printed before its session ended (flushed as it happens)")
    try:
        sc.stdin.write(b"go\n")
        sc.stdin.flush()
        so, se = sc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        sc.kill()
        so, se = sc.communicate()
    smtp_exp = None
    if check(sc.returncode == 0, "smtp client finished", se.decode("utf-8", "replace")):
        smtp_exp = json.loads(so.decode().strip().splitlines()[-1])
        spooled = [f for f in os.listdir(work + "/spool") if f.endswith(".eml")]
        if check(len(spooled) == 1, "smtpd spooled the message"):
            with open(os.path.join(work, "spool", spooled[0]), "rb") as f:
                check(hashlib.sha256(f.read()).hexdigest() == smtp_exp["sha256"],
                      "client-side sha256 = server spool's (the expectation itself is right)")
    wait_for(lambda: [e for e in read_events(out) if e.get("type") == "session"
                      and e.get("proto") == "smtp"], 10)

    pop_exp, pop_out = client(cli, "pop3", SRV4)
    check(pop_exp is not None, "pop3 client (USER/PASS, RETR) succeeded", pop_out)
    if pop_exp:
        wait_for(lambda: [e for e in read_events(out) if e.get("type") == "session"
                          and e.get("proto") == "pop3"], 10)
    imap_exp, imap_out = client(cli, "imap", SRV4)
    check(imap_exp is not None, "imap client (LOGIN, FETCH) succeeded", imap_out)
    if imap_exp:
        wait_for(lambda: [e for e in read_events(out) if e.get("type") == "session"
                          and e.get("proto") == "imap"], 10)
    before = read_events(out)
    for proto, exp in (("smtp", smtp_exp), ("pop3", pop_exp), ("imap", imap_exp)):
        check(any(e.get("type") == "session" and e.get("proto") == proto for e in before),
              "%s session record printed before SIGINT" % proto)

    rc = stop(mt, signal.SIGINT, 10)
    check(rc == 0, "mailtap exits 0 on SIGINT", "rc=%s\n%s" % (rc, tail(err)))
    live = read_events(out)
    check(not [e for e in live if e.get("type") == "_unparsable"], "every output line is JSON",
          [e for e in live if e.get("type") == "_unparsable"][:3])
    summ = live[-1] if live else {}
    check(summ.get("type") == "summary" and isinstance(summ.get("received"), int)
          and isinstance(summ.get("dropped"), int) and summ.get("received", 0) > 0,
          "closing summary with received/dropped counters (received=%s dropped=%s)" % (
              summ.get("received"), summ.get("dropped")), json.dumps(summ))
    check(sum(1 for e in live if e.get("type") == "summary") == 1, "exactly one summary")
    if summ.get("type") == "summary":
        check(summ.get("sessions", {}).get("total") == 3,
              "summary counts 3 sessions", json.dumps(summ.get("sessions")))

    smtp_msgs = None
    if smtp_exp:
        smtp_msgs = check_session(live, smtp_exp, "live")
        if smtp_msgs:
            m = smtp_msgs[0]
            check((m.get("mail_from"), m.get("rcpt_to")) ==
                  (smtp_exp["mail_from"], smtp_exp["rcpt_to"]), "live: smtp envelope",
                  json.dumps(m))
            atts = [p for p in m.get("parts", []) if p.get("filename")]
            check(bool(atts), "live: smtp message has an attachment part (%s)"
                  % ", ".join(str(p.get("filename")) for p in atts), json.dumps(m.get("parts")))
    if pop_exp:
        check_session(live, pop_exp, "live")
    if imap_exp:
        check_session(live, imap_exp, "live")

    # --- 2. the -w file read back gives the same events ----------------------
    r = sh([mailtap, "-r", pcap, "--json"], timeout=30, check_rc=False)
    check(r.returncode == 0, "mailtap -r live.pcap exits 0", r.stderr.decode())
    replay = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
    ea, eb = essence(live), essence(replay)
    check(ea == eb and len(ea) > 0,
          "replay of -w file: same commands, credentials and message hashes (%d events)"
          % len(ea), "\n".join("live   %s\nreplay %s" % (x, y)
                               for x, y in zip(ea + [None] * len(eb), eb + [None] * len(ea))
                               if x != y))
    nl = [e for e in live if e.get("type") != "summary"]
    nr = [e for e in replay if e.get("type") != "summary"]
    check(nl == nr, "replay of -w file: every non-summary event identical (%d)" % len(nl),
          "\n".join("live   %s\nreplay %s" % (json.dumps(x)[:300], json.dumps(y)[:300])
                    for x, y in zip(nl, nr) if x != y) or "lengths %d/%d" % (len(nl), len(nr)))
    sr = replay[-1] if replay else {}
    check(sr.get("type") == "summary" and "received" not in sr,
          "replay summary has no live-only counters", json.dumps(sr))
    if sr.get("type") == "summary" and summ.get("type") == "summary":
        keys = ("sessions", "credentials", "messages", "packets")
        check({k: summ.get(k) for k in keys} == {k: sr.get(k) for k in keys},
              "replay summary's counts = live summary's",
              "%s\n%s" % ({k: summ.get(k) for k in keys}, {k: sr.get(k) for k in keys}))

    # --- 3. bad BPF filter: usage error, exit 1 ------------------------------
    r = sh(in_ns(srv, mailtap, "-i", "lo", "-f", "tcp port", "--json"), timeout=10,
           check_rc=False)
    msg = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 1 and "filter" in msg.lower() and "tcp port" in msg,
          "bad BPF filter 'tcp port' exits 1 naming the filter", "rc=%d: %s" % (r.returncode, msg))

    # --- 4. without privilege: exit 2 naming the capabilities ----------------
    r = sh(in_ns(srv, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 mailtap, "-i", "lo", "-c", "1"), timeout=10, check_rc=False)
    msg = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 2 and "CAP_NET_RAW" in msg and "setcap" in msg,
          "unprivileged -i lo exits 2 naming CAP_NET_RAW and setcap",
          "rc=%d: %s" % (r.returncode, msg))

    # --- 5. -Z nobody after opening: still captures -------------------------
    zout, zerr = work + "/z.jsonl", work + "/z.err"
    mz = start_mailtap(mailtap, srv, ["-i", srv_if, "--json", "-Z", "nobody"], zout, zerr)
    uid = wait_for(lambda: _uid_of(mz.pid) if _uid_of(mz.pid) != 0 else None, 5)
    check(uid == 65534, "-Z nobody: mailtap runs as uid 65534 (got %s)" % uid)
    r = sh(in_ns(cli, "swaks", "--server", SRV4, "--helo", "client.example.test",
                 "--from", "bob@example.test", "--to", "alice@example.test",
                 "--auth", "LOGIN", "--auth-user", "bob@example.test",
                 "--auth-password", "Builder-2024", "--data", work + "/msg/simple.eml"),
           timeout=30, check_rc=False)
    check(r.returncode == 0, "swaks AUTH LOGIN session succeeded",
          r.stdout.decode("utf-8", "replace")[-2000:])
    got = wait_for(lambda: [e for e in read_events(zout) if e.get("type") == "session"
                            and e.get("proto") == "smtp"], 10)
    check(bool(got), "-Z nobody: session reported while running", tail(zout) + tail(zerr))
    rc = stop(mz, signal.SIGINT, 10)
    check(rc == 0, "-Z nobody: exits 0 on SIGINT", "rc=%s\n%s" % (rc, tail(zerr)))
    zev = read_events(zout)
    cr = [e for e in zev if e.get("type") == "credential"]
    check(len(cr) == 1 and (cr[0].get("mechanism"), cr[0].get("username"), cr[0].get("password"))
          == ("LOGIN", "bob@example.test", "Builder-2024"),
          "-Z nobody: LOGIN credential of swaks reported", json.dumps(cr))
    zs = zev[-1] if zev else {}
    check(zs.get("type") == "summary" and isinstance(zs.get("received"), int),
          "-Z nobody: summary with received counter after dropping root", json.dumps(zs))

    # --- 6. SIGTERM with a session still open: flushed and reported ----------
    tout, terr = work + "/term.jsonl", work + "/term.err"
    mterm = start_mailtap(mailtap, srv, ["-i", srv_if, "--json"], tout, terr)
    hold = subprocess.Popen(in_ns(cli, sys.executable, os.path.join(HERE, "live_client.py"),
                                  "smtp", SRV4, work + "/msg/simple.eml"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    PROCS.append(hold)
    line = readline_timeout(hold.stdout, 15)
    check(line == "AUTHED\n", "open session: smtp client authenticated and waits", line)
    cr = wait_for(lambda: [e for e in read_events(tout) if e.get("type") == "credential"], 10)
    rc = stop(mterm, signal.SIGTERM, 10)
    check(rc == 0, "SIGTERM: mailtap exits 0", "rc=%s\n%s" % (rc, tail(terr)))
    tev = read_events(tout)
    sess = [e for e in tev if e.get("type") == "session" and cr
            and e.get("session") == cr[0]["session"]]
    check(len(sess) == 1 and sess[0].get("closed") is False and sess[0].get("proto") == "smtp",
          "SIGTERM: the open smtp session is flushed and reported (closed=false)",
          json.dumps(sess) + "\n" + tail(tout))
    check(bool(tev) and tev[-1].get("type") == "summary"
          and tev[-1].get("sessions", {}).get("total") == 1,
          "SIGTERM: summary counts the open session", json.dumps(tev[-1:]))
    hold.kill()                                # it would wait for a go-ahead
    hold.wait(5)

    # --- 7. --duration stops an idle capture ----------------------------------
    t = time.monotonic()
    try:
        r = sh(in_ns(srv, mailtap, "-i", "lo", "--duration", "1", "--json"), timeout=6,
               check_rc=False)
        rc, took = r.returncode, time.monotonic() - t
        last = r.stdout.decode().strip().splitlines()[-1:] or [""]
        check(rc == 0 and took < 4 and '"type":"summary"' in last[0],
              "--duration 1 on an idle interface exits 0 after ~1 s with a summary "
              "(rc=%s, %.1f s)" % (rc, took))
    except subprocess.TimeoutExpired:
        check(False, "--duration 1 on an idle interface exits 0 after ~1 s with a summary",
              "still running after 6 s: no packet, no tick (pcap immediate mode blocks in "
              "poll() without a timeout), so the deadline is never looked at")


def _uid_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
