#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The Wireshark plugin against the CLI, which is the reference.

  test_plugin.py --mailtap BIN --plugin-dir BUILD/wsplugins --samples DIR [--tshark PATH]

Checks that tshark loads plugin-dir/4.0/epan/mailtap.so and registers the
mailtap fields; then, for every samples/*.pcap, that the credentials,
messages (SHA-256, subject, part file names), replies (code and the frame
of the command answered) and command verbs the plugin shows per frame are
the ones `mailtap -r X --json` reports at the same frame numbers, in one
pass and in two passes (-2); and that Wireshark's own smtp, pop and imap
fields are the same with the plugin loaded as without it.

Exits 0 with "SKIP: ..." where tshark or the built plugin is absent.
Root ignores WIRESHARK_PLUGIN_DIR, so as root tshark runs as uid 65534
(setpriv) with HOME in a temporary directory; captures are copied there.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

FAILS = []
PASSES = [0]
AGG = "\x1f"  # joins several occurrences of a field in one frame

REQUIRED_FIELDS = {
    "mailtap.session": "FT_FRAMENUM",
    "mailtap.proto": "FT_STRING",
    "mailtap.command.verb": "FT_STRING",
    "mailtap.command.arg": "FT_STRING",
    "mailtap.command.response_frame": "FT_FRAMENUM",
    "mailtap.reply.code": "FT_STRING",
    "mailtap.reply.request_frame": "FT_FRAMENUM",
    "mailtap.auth.mechanism": "FT_STRING",
    "mailtap.auth.username": "FT_STRING",
    "mailtap.auth.password": "FT_STRING",
    "mailtap.auth.hash": "FT_STRING",
    "mailtap.auth.token": "FT_STRING",
    "mailtap.auth.result": "FT_STRING",
    "mailtap.message.source": "FT_STRING",
    "mailtap.message.mail_from": "FT_STRING",
    "mailtap.message.rcpt_to": "FT_STRING",
    "mailtap.message.from": "FT_STRING",
    "mailtap.message.to": "FT_STRING",
    "mailtap.message.subject": "FT_STRING",
    "mailtap.message.size": "FT_UINT64",
    "mailtap.message.sha256": "FT_STRING",
    "mailtap.part.content_type": "FT_STRING",
    "mailtap.part.filename": "FT_STRING",
    "mailtap.part.size": "FT_UINT64",
    "mailtap.part.sha256": "FT_STRING",
    "mailtap.anomaly": "FT_STRING",
}

# Plugin field -> how to read the same value from a CLI JSON event.
CRED_FIELDS = {
    "mailtap.auth.mechanism": "mechanism",
    "mailtap.auth.username": "username",
    "mailtap.auth.password": "password",
    "mailtap.auth.token": "token",
    "mailtap.auth.hash": "hash",
    "mailtap.auth.result": "result",
}
MSG_FIELDS = ["mailtap.message.sha256", "mailtap.message.subject", "mailtap.part.filename"]
REPLY_FIELDS = ["mailtap.reply.code", "mailtap.reply.request_frame"]
CMD_FIELDS = ["mailtap.command.verb"]
COMPARED = list(CRED_FIELDS) + MSG_FIELDS + REPLY_FIELDS + CMD_FIELDS

BUILTIN_FIELDS = ["smtp.req.command", "smtp.response.code", "pop.request.command",
                  "pop.response.indicator", "imap.request", "imap.response"]


def check(cond, what):
    if cond:
        PASSES[0] += 1
    else:
        FAILS.append(what)
        print("FAIL", what)
    return cond


class Tshark:
    def __init__(self, tshark, plugin_dir, home):
        self.tshark = tshark
        self.plugin_dir = plugin_dir
        self.home = home
        self.as_nobody = os.geteuid() == 0

    def run(self, args, plugin=True):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
               "LC_ALL": "C.UTF-8"}
        if plugin:
            env["WIRESHARK_PLUGIN_DIR"] = self.plugin_dir
        cmd = [self.tshark] + args
        if self.as_nobody:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        r = subprocess.run(cmd, env=env, capture_output=True, cwd=self.home)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def fields_by_frame(out, names):
    """tshark -T fields output -> {(frame, field): sorted non-empty values}."""
    got = {}
    for line in out.splitlines():
        cols = line.split("\t")
        if len(cols) != len(names) + 1 or not cols[0].isdigit():
            continue
        frame = int(cols[0])
        for name, col in zip(names, cols[1:]):
            vals = [v for v in col.split(AGG) if v != ""]
            if vals:
                got.setdefault((frame, name), []).extend(vals)
    return {k: sorted(v) for k, v in got.items()}


def cli_expected(events):
    """The CLI's JSON events -> {(frame, field): sorted values} as the plugin shows them."""
    exp = {}

    def add(frame, field, value):
        if value is None or value == "":
            return
        exp.setdefault((frame, field), []).append(str(value))

    for ev in events:
        t, pkt = ev.get("type"), ev.get("pkt")
        if t == "credential":
            for field, key in CRED_FIELDS.items():
                add(pkt, field, ev.get(key))
        elif t == "message":
            add(pkt, "mailtap.message.sha256", ev.get("sha256"))
            add(pkt, "mailtap.message.subject", (ev.get("headers") or {}).get("subject"))
            for part in ev.get("parts") or []:
                add(pkt, "mailtap.part.filename", part.get("filename"))
        elif t == "reply":
            add(pkt, "mailtap.reply.code", ev.get("code"))
            if ev.get("cmd_pkt"):
                add(pkt, "mailtap.reply.request_frame", ev.get("cmd_pkt"))
        elif t == "command":
            if not ev.get("auth_data"):
                add(pkt, "mailtap.command.verb", ev.get("verb"))
    return {k: sorted(v) for k, v in exp.items()}


def diff(exp, got, limit=6):
    lines = []
    for key in sorted(set(exp) | set(got)):
        if exp.get(key) != got.get(key):
            lines.append("    frame %d %s: cli %s, plugin %s" % (key[0], key[1], exp.get(key),
                                                                  got.get(key)))
    more = len(lines) - limit
    return "\n".join(lines[:limit] + (["    ... %d more" % more] if more > 0 else []))


def plugin_usable_by(ts, path):
    """Whether the user tshark runs as can read path (every directory on the way)."""
    if not ts.as_nobody:
        return os.access(path, os.R_OK)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "test", "-r", path])
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--plugin-dir", required=True, help="directory holding 4.0/epan/mailtap.so")
    ap.add_argument("--samples", required=True)
    ap.add_argument("--tshark", default=shutil.which("tshark"))
    a = ap.parse_args()

    if not a.tshark or not os.access(a.tshark, os.X_OK):
        print("SKIP: tshark not found")
        return 0
    so = os.path.join(a.plugin_dir, "4.0", "epan", "mailtap.so")
    if not os.path.exists(so):
        print("SKIP: plugin not built (%s absent)" % so)
        return 0
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        print("SKIP: running as root and setpriv (util-linux) is absent")
        return 0
    samples = sorted(glob.glob(os.path.join(a.samples, "*.pcap")))

    tmp = tempfile.mkdtemp(prefix="mailtap-plugin-")
    try:
        os.chmod(tmp, 0o755)
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        os.chmod(home, 0o777)
        ts = Tshark(a.tshark, os.path.abspath(a.plugin_dir), home)
        if not plugin_usable_by(ts, so):
            # e.g. a build directory under /root: test the same file from here
            copy = os.path.join(tmp, "wsplugins", "4.0", "epan")
            os.makedirs(copy)
            for d in (os.path.join(tmp, "wsplugins"), os.path.join(tmp, "wsplugins", "4.0"), copy):
                os.chmod(d, 0o755)
            shutil.copy(so, copy)
            os.chmod(os.path.join(copy, "mailtap.so"), 0o644)
            ts.plugin_dir = os.path.join(tmp, "wsplugins")
            print("NOTE: %s is not readable by uid 65534; testing a copy" % so)

        rc, out, err = ts.run(["-G", "plugins"])
        if not check(rc == 0 and any(l.startswith("mailtap.so") for l in out.splitlines()),
                     "tshark -G plugins lists mailtap.so"):
            print(err.strip())
            print("%d passed, %d failed" % (PASSES[0], len(FAILS)))
            return 1

        rc, out, err = ts.run(["-G", "fields"])
        types = {}
        for line in out.splitlines():
            cols = line.split("\t")
            if len(cols) > 3 and cols[0] == "F":
                types[cols[2]] = cols[3]
        for name, ftype in REQUIRED_FIELDS.items():
            check(types.get(name) == ftype,
                  "-G fields: %s is %s (want %s)" % (name, types.get(name), ftype))
        check(any(n.startswith("mailtap.expert.") for n in types)
              or "mailtap.expert.cleartext_credentials" in out,
              "-G fields: mailtap expert infos registered")

        check(len(samples) > 0, "there are sample captures in %s" % a.samples)
        builtin_seen = set()
        for src in samples:
            name = os.path.basename(src)
            pcap = os.path.join(tmp, name)
            shutil.copy(src, pcap)
            os.chmod(pcap, 0o644)

            r = subprocess.run([a.mailtap, "-r", src, "--json"], capture_output=True)
            if not check(r.returncode == 0, "%s: mailtap -r --json exits 0 (%d: %s)" % (
                    name, r.returncode, r.stderr.decode("utf-8", "replace").strip())):
                continue
            events = [json.loads(l) for l in r.stdout.decode("utf-8").splitlines() if l.strip()]
            exp = cli_expected(events)

            outs = {}
            for label, extra, plugin in (("one pass", [], True), ("two passes", ["-2"], True),
                                         ("without plugin", [], False)):
                names = (COMPARED if plugin else []) + BUILTIN_FIELDS
                fargs = ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
                         "-E", "aggregator=" + AGG, "-e", "frame.number"]
                for n in names:
                    fargs += ["-e", n]
                rc, out, err = ts.run(["-r", pcap, "-n"] + extra + fargs, plugin=plugin)
                check(rc == 0, "%s: tshark (%s) exits 0: %s" % (name, label, err.strip()[:300]))
                outs[label] = fields_by_frame(out, names)

            # Two passes (as the GUI): every frame shows exactly what the CLI
            # reports at that frame number.
            got = {k: v for k, v in outs["two passes"].items() if k[1] in COMPARED}
            if not check(got == exp, "%s: plugin (two passes) shows what the CLI reports" % name):
                print(diff(exp, got))
            # One pass: an event the engine reports only after a later frame
            # arrived (a server greeting is held until the protocol is
            # recognised) cannot be added to a frame already printed.  What
            # is shown must still be right, and credentials and messages,
            # completed by the frame that carries them, must all be there.
            got1 = {k: v for k, v in outs["one pass"].items() if k[1] in COMPARED}
            late = {k for k in exp if k not in got1 and k[1] in REPLY_FIELDS + CMD_FIELDS}
            exp1 = {k: v for k, v in exp.items() if k not in late}
            if not check(got1 == exp1, "%s: plugin (one pass) shows what the CLI reports, "
                         "but for %d late command/reply values" % (name, len(late))):
                print(diff(exp1, got1))
            ncred = sum(len(v) for k, v in exp.items() if k[1] in CRED_FIELDS)
            nmsg = sum(len(v) for k, v in exp.items() if k[1] in MSG_FIELDS)
            print("%s: %d credential and %d message values, %d command/reply values "
                  "(%d late in one pass)" % (name, ncred, nmsg, len(exp) - ncred - nmsg,
                                             len(late)))

            # Wireshark's own dissectors are untouched by the plugin
            def builtin(d):
                return {k: v for k, v in d.items() if k[1] in BUILTIN_FIELDS}
            with_plugin, without = builtin(outs["one pass"]), builtin(outs["without plugin"])
            ok = check(with_plugin == without,
                       "%s: built-in smtp/pop/imap fields unchanged by the plugin" % name)
            if not ok:
                print(diff(without, with_plugin))
            builtin_seen.update(k[1].split(".")[0] for k in with_plugin)

            # command <-> reply pairing, both ways, once all frames were seen
            rc, out, err = ts.run(["-r", pcap, "-n", "-2", "-T", "fields", "-E", "separator=/t",
                                   "-E", "occurrence=a", "-E", "aggregator=" + AGG,
                                   "-e", "frame.number", "-e", "mailtap.command.response_frame",
                                   "-e", "mailtap.reply.request_frame"])
            pairs = fields_by_frame(out, ["resp", "req"])
            reqs = {(int(v), f) for (f, k), vals in pairs.items() if k == "req" for v in vals}
            resps = {(f, int(v)) for (f, k), vals in pairs.items() if k == "resp" for v in vals}
            check(resps <= reqs, "%s: every command.response_frame is answered by a reply "
                  "whose request_frame points back" % name)
        for proto in ("smtp", "pop", "imap"):
            check(proto in builtin_seen or not samples,
                  "built-in %s fields present on the samples with the plugin loaded" % proto)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("%d passed, %d failed" % (PASSES[0], len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
