#!/usr/bin/env python3
"""The mailtap command as a user or a script meets it: exit codes, error
messages on missing and damaged captures (naming file and offset, keeping
what was read), standard input, several inputs, extraction, redaction.

  test_cli.py --mailtap BIN --samples DIR
"""
import argparse
import hashlib
import json
import os
import struct
import shutil
import subprocess
import sys
import tempfile

FAILS = []
PASSES = [0]


def check(cond, what):
    if cond:
        PASSES[0] += 1
    else:
        FAILS.append(what)
        print("FAIL", what)


def run(args, stdin=None):
    r = subprocess.run([MAILTAP] + args, input=stdin, capture_output=True)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def records(path):
    """Offsets of the records of a classic pcap file."""
    data = open(path, "rb").read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        out.append((off, incl))
        off += 16 + incl
    return data, endian, out


def tcp_session_pcap(path, c2s, s2c):
    """A minimal capture: handshake, one client and one server segment, FIN."""
    out = open(path, "wb")
    out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    cl, sv = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 25])
    seq = {cl: 1000, sv: 5000}
    t = [0]

    def pkt(src, dst, sport, dport, flags, data=b""):
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq[src], seq[dst] + 1, 5 << 4, flags,
                          65535, 0, 0) + data
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
        frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp
        t[0] += 1
        out.write(struct.pack("<IIII", 1700000000, t[0], len(frame), len(frame)) + frame)
        seq[src] += len(data) + (1 if flags & 0x03 else 0)
    pkt(cl, sv, 40000, 25, 0x02)
    seq[sv] -= 0
    pkt(sv, cl, 25, 40000, 0x12)
    pkt(sv, cl, 25, 40000, 0x18, s2c)
    pkt(cl, sv, 40000, 25, 0x18, c2s)
    pkt(cl, sv, 40000, 25, 0x11)
    pkt(sv, cl, 25, 40000, 0x11)
    out.close()


def jsonl(out):
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def main():
    global MAILTAP
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--malloc", default=None,
                    help="the malloc the build links (mimalloc or glibc): --version must say it")
    a = ap.parse_args()
    MAILTAP = a.mailtap
    sample = os.path.join(a.samples, "smtp-auth-plain.pcap")
    tmp = tempfile.mkdtemp(prefix="mailtap-cli-")

    # usage errors: exit 1
    for args in ([], ["--no-such-option"], ["-r", sample, "--cap", "bogus=1"],
                 ["-r", sample, "--cap", "line_max=-1"], ["-r", sample, "stray"]):
        rc, out, err = run(args)
        check(rc == 1, f"usage error {args} exits 1 (got {rc})")
    rc, out, err = run(["--help"])
    check(rc == 0 and "-r" in out, "--help exits 0")
    rc, out, err = run(["--version"])
    check(rc == 0 and out.startswith("mailtap "), "--version")
    if a.malloc:
        check(f"\nmalloc: {a.malloc}" in out, f"--version names the malloc ({a.malloc}): {out!r}")

    # a good capture: exit 0, session record with the documented fields
    rc, out, err = run(["-r", sample, "--json"])
    check(rc == 0, "good capture exits 0")
    ev = jsonl(out)
    sess = [e for e in ev if e["type"] == "session"]
    check(len(sess) == 1, "one session")
    for k in ("session", "client", "server", "start", "end", "c2s_bytes", "s2c_bytes",
              "complete", "gaps", "proto", "starttls", "anomalies"):
        check(k in sess[0], f"session field {k}")
    check(sess[0]["complete"] is True and sess[0]["gaps"] == [], "sample session is complete")
    check(sess[0]["server"]["port"] == 25 and sess[0]["client"]["port"] > 1024, "roles")
    check(sess[0]["end"].endswith("Z") and "." in sess[0]["end"], "RFC 3339 with microseconds")
    good = out

    # standard input gives the same output
    with open(sample, "rb") as f:
        rc, out, err = run(["-r", "-", "--json"], stdin=f.read())
    check(rc == 0 and out == good, "stdin '-' equals the file")
    # cut in a record's header on standard input: the offset is still named
    with open(sample, "rb") as f:
        whole = f.read()
    data0, _, recs0 = records(sample)
    cut = recs0[5][0] + 12  # 12 of the sixth record header's 16 bytes
    rc, out, err = run(["-r", "-"], stdin=whole[:cut])
    check(rc == 2 and ("byte offset %d" % recs0[5][0]) in err,
          "stdin cut in a record header: exit 2, the record's offset named")

    # several inputs in a row
    rc, out, err = run(["-r", sample, "-r", sample, "--json"])
    check(rc == 0 and len([e for e in jsonl(out) if e["type"] == "session"]) == 2,
          "two inputs, two sessions")

    # missing file, not a capture, empty file: exit 2, the file is named
    missing = os.path.join(tmp, "missing.pcap")
    text = os.path.join(tmp, "notes.txt")
    open(text, "w").write("this is not a capture\n" * 10)
    empty = os.path.join(tmp, "empty.pcap")
    open(empty, "wb").close()
    data, endian, recs = records(sample)
    shorthdr = os.path.join(tmp, "short-header.pcap")
    open(shorthdr, "wb").write(data[:10])
    for p in (missing, text, empty, shorthdr):
        rc, out, err = run(["-r", p])
        check(rc == 2 and os.path.basename(p) in err, f"{os.path.basename(p)}: exit 2 naming it ({rc}, {err.strip()})")

    # a missing file among good ones: the good ones are still analyzed
    rc, out, err = run(["-r", missing, "-r", sample, "--json"])
    check(rc == 2 and len([e for e in jsonl(out) if e["type"] == "session"]) == 1,
          "good input after a missing one is analyzed, exit 2")

    # damaged part-way: truncated last record, absurd caplen in the middle
    cut_off, cut_len = recs[-1]
    trunc = os.path.join(tmp, "truncated.pcap")
    open(trunc, "wb").write(data[:cut_off + 16 + cut_len // 2])
    mid = len(recs) // 2
    bad_off = recs[mid][0]
    absurd = bytearray(data)
    struct.pack_into(endian + "I", absurd, bad_off + 8, 0xF0000000)
    absurd_p = os.path.join(tmp, "absurd.pcap")
    open(absurd_p, "wb").write(absurd)
    for p, off in ((trunc, cut_off), (absurd_p, bad_off)):
        rc, out, err = run(["-r", p, "--json"])
        name = os.path.basename(p)
        check(rc == 2, f"{name}: exit 2")
        check(name in err and f"offset {off}" in err, f"{name}: error names file and offset {off}: {err.strip()}")
        ev = jsonl(out)
        check(any(e["type"] == "session" for e in ev), f"{name}: what was read is reported")
    rc, out, err = run(["-r", absurd_p, "--json"])
    check(any(e["type"] == "command" and e["verb"] == "EHLO" for e in jsonl(out)),
          "records before the damage are dissected")

    # extraction: .eml with the message's hash; nothing overwritten on a second run
    xdir = os.path.join(tmp, "x")
    rc, out, err = run(["-r", sample, "--json", "-x", xdir])
    msgs = [e for e in jsonl(out) if e["type"] == "message"]
    check(rc == 0 and len(msgs) == 1 and os.path.isfile(msgs[0]["file"]), "message extracted")
    body = open(msgs[0]["file"], "rb").read()
    check(hashlib.sha256(body).hexdigest() == msgs[0]["sha256"] and len(body) == msgs[0]["size"],
          ".eml holds the exact bytes")
    rc, out2, err = run(["-r", sample, "--json", "-x", xdir])
    msgs2 = [e for e in jsonl(out2) if e["type"] == "message"]
    check(msgs2[0]["file"] != msgs[0]["file"] and open(msgs[0]["file"], "rb").read() == body,
          "second run does not overwrite")
    check(os.path.realpath(msgs2[0]["file"]).startswith(os.path.realpath(xdir) + os.sep),
          "extracted inside the directory")

    # -c counts records across the files of a run, in every mode: the
    # second file is read only for what the first left, and not at all
    # when the first used the whole count
    first, second = (os.path.join(a.samples, n) for n in ("imap-fetch.pcap", "imap-idle.pcap"))
    n1, n2 = len(records(first)[2]), len(records(second)[2])
    for count, want in ((n1 - 3, n1 - 3), (n1, n1), (n1 + 7, n1 + 7), (n1 + n2 + 5, n1 + n2)):
        for mode in ([], ["--no-pipeline"], ["--workers", "1"], ["--workers", "2"]):
            rc, out, err = run(["-r", first, "-r", second, "--json", "-c", str(count)] + mode)
            summ = [e for e in jsonl(out) if e["type"] == "summary"]
            got = summ[0]["packets"] if summ else None
            check(rc == 0 and got == want,
                  f"-c {count} over {n1} + {n2} records {mode}: {want} read (got {got}, rc {rc})")

    # credentials and redaction
    rc, out, err = run(["-r", sample, "--credentials"])
    check(rc == 0 and "alice@example.test" in out and "Wonderland-2024" in out, "--credentials table")
    for mode in ([], ["--json"], ["--credentials"]):
        rc, out, err = run(["-r", sample, "--redact"] + mode)
        check(rc == 0 and "Wonderland-2024" not in out and "V29uZGVybGFuZC0yMDI0" not in out
              and "AGFsaWNlQGV4YW1wbGUudGVzdABXb25kZXJsYW5kLTIwMjQ=" not in out,
              f"--redact hides the password {mode}")

    # --html with --redact: the page holds no secret either
    page = os.path.join(tmp, "r.html")
    rc, out, err = run(["-r", sample, "--html", page, "--redact", "-q"])
    text = open(page, encoding="utf-8").read() if os.path.exists(page) else ""
    check(rc == 0 and "alice@example.test" in text and "Wonderland-2024" not in text,
          "--html --redact hides the password in the page")

    # bytes that are not UTF-8: valid JSON, raw bytes kept in *_b64; no raw
    # control bytes in the transcript
    odd = os.path.join(tmp, "odd.pcap")
    tcp_session_pcap(odd, b"EHLO caf\xe9\x1b[2J\r\nQUIT\r\n", b"220 h\xf4te \x9b ready\r\n")
    rc, out, err = run(["-r", odd, "--json"])
    ev = jsonl(out)
    cmd = [e for e in ev if e["type"] == "command" and e["verb"] == "EHLO"]
    rep = [e for e in ev if e["type"] == "reply" and e["code"] == "220"]
    import base64
    check(rc == 0 and cmd and base64.b64decode(cmd[0]["arg_b64"]) == b"caf\xe9\x1b[2J",
          "invalid UTF-8 argument kept in arg_b64")
    check(rep and base64.b64decode(rep[0]["lines_b64"][0]) == b"220 h\xf4te \x9b ready",
          "invalid UTF-8 reply kept in lines_b64")
    rc, out, err = run(["-r", odd])
    check(rc == 0 and "\x1b" not in out and "\\x1b[2J" in out and "\\xe9" in out,
          "transcript escapes the escape sequence and the invalid byte")

    # pcapng with interfaces of two link types: libpcap cannot read it; the
    # error says so (exit 2) rather than calling the file damaged
    def ng_block(btype, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    mixed = os.path.join(tmp, "mixed-links.pcapng")
    with open(mixed, "wb") as f:
        f.write(ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(ng_block(1, struct.pack("<HHI", 1, 0, 262144)))      # Ethernet
        f.write(ng_block(1, struct.pack("<HHI", 276, 0, 262144)))    # Linux SLL2
    rc, out, err = run(["-r", mixed])
    check(rc == 2 and "different link types" in err and "damaged" not in err,
          "pcapng with two link types: exit 2, said to be unsupported, not damaged")

    # message_max truncates what is kept, not what is seen: complete and
    # sha256 are those of the uncapped run, in every protocol
    for name in ("imap-fetch", "imap-append", "pop3-user-pass", "smtp-mime"):
        cap = os.path.join(a.samples, name + ".pcap")
        full = [e for e in jsonl(run(["-r", cap, "--json"])[1]) if e["type"] == "message"]
        cut = [e for e in jsonl(run(["-r", cap, "--json", "--cap", "message_max=100"])[1])
               if e["type"] == "message"]
        check(full and len(full) == len(cut) and
              all(c["truncated"] and c["complete"] == f["complete"] and c["sha256"] == f["sha256"]
                  for f, c in zip(full, cut) if f["size"] > 100),
              "%s: a message past message_max keeps its complete flag and hash" % name)

    # SMTP smuggling: only CRLF.CRLF ends DATA (RFC 5321 4.1.1.4).  A "."
    # line next to a bare LF is part of the message, raises bare_lf_dot,
    # and what follows it is not a second transaction with a forged envelope
    smug = os.path.join(tmp, "smuggle.pcap")
    for term in (b"\n.\n", b"\n.\r\n", b"\r\n.\n"):
        body = (b"Subject: one\r\n\r\nhi" + term + b"MAIL FROM:<admin@x>\r\nRCPT TO:<v@x>\r\n"
                b"DATA\r\nSubject: forged\r\n\r\nx\r\n")
        tcp_session_pcap(smug, b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + body +
                         b".\r\nQUIT\r\n",
                         b"220 s\r\n250 s\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n")
        rc, out, err = run(["-r", smug, "--json"])
        ev = jsonl(out)
        msgs = [e for e in ev if e["type"] == "message"]
        an = [e["name"] for e in ev if e["type"] == "anomaly"]
        check(rc == 0 and len(msgs) == 1 and msgs[0]["mail_from"] == "<a@x>" and
              msgs[0]["size"] == len(body) - (1 if term == b"\r\n.\n" else 0) and
              msgs[0]["headers"]["subject"] == "one" and an.count("bare_lf_dot") == 1,
              "SMTP smuggling (%r): one message, its envelope, bare_lf_dot" % term)

    # encoded words that cut a character, RFC 2231 sections out of order:
    # the subject, the sender's name and the attachment's name come out
    # whole in JSON, in the transcript and as the extracted file's name
    cut = os.path.join(tmp, "cut-words.pcap")
    body = (b"From: =?GBK?B?1Q==?= =?GBK?B?xcj9?= <zhang@example.cn>\r\n"
            b"Subject: =?GBK?B?1g==?=\r\n =?GBK?B?0M7E08q8/g==?=\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n"
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename*1*=%E5%91%8A.pdf;\r\n"
            b" filename*0*=UTF-8''%E6%8A%A5\r\n\r\nJVBERg==\r\n--b--\r\n")
    tcp_session_pcap(cut, b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n" + body +
                     b".\r\nQUIT\r\n",
                     b"220 s\r\n250 s\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n")
    xdir = os.path.join(tmp, "cut-x")
    rc, out, err = run(["-r", cut, "--json", "-x", xdir])
    msgs = [e for e in jsonl(out) if e["type"] == "message"]
    names = [p.get("filename") for m in msgs for p in m.get("parts", [])]
    check(rc == 0 and len(msgs) == 1 and msgs[0]["headers"]["subject"] == "中文邮件" and
          msgs[0]["headers"]["from"] == "张三 <zhang@example.cn>" and "报告.pdf" in names,
          "split encoded words and RFC 2231 sections out of order (JSON): %r %r" %
          ([m["headers"] for m in msgs], names))
    saved = [f for _, _, fs in os.walk(xdir) for f in fs]
    check(any(f.endswith("-报告.pdf") for f in saved), "extracted under its decoded name: %r" % saved)
    rc, out, err = run(["-r", cut])
    check(rc == 0 and "中文邮件" in out and "张三" in out, "split encoded words (transcript)")

    # progress on stderr only when it is a terminal, and never with -q
    import pty
    big = os.path.join(tmp, "many.pcap")
    with open(big, "wb") as f:  # enough records for several progress ticks
        data0, _, recs0 = records(sample)
        f.write(data0[:24])
        for _ in range(300):
            f.write(data0[24:])
    def stderr_on_tty(args):
        master, slave = pty.openpty()
        r = subprocess.run([MAILTAP] + args, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        os.close(master)
        return r.returncode, b"".join(chunks).decode("utf-8", "replace")
    rc, tty_err = stderr_on_tty(["-r", big])
    check(rc == 0 and "packets" in tty_err and "%" in tty_err, "progress on a terminal")
    check("sessions (" in tty_err, "progress counts the sessions")
    # with --workers the sessions are counted in the workers' threads: the
    # line gives packets and speed only, not a count that stays at 0
    rc, tty_err = stderr_on_tty(["--workers", "2", "-r", big])
    check(rc == 0 and "packets" in tty_err and "sessions" not in tty_err,
          "--workers progress: packets, no session count")
    rc, tty_err = stderr_on_tty(["-q", "-r", big])
    check(rc == 0 and "packets" not in tty_err, "-q silences the progress")
    rc, out, err = run(["-r", big])
    check(rc == 0 and "%" not in err, "no progress when stderr is not a terminal")

    # cmake --install puts the binary and the man page (and the plugin, when
    # built) in place; DESTDIR keeps it inside the temporary directory
    builddir = os.path.dirname(os.path.abspath(MAILTAP))
    if os.path.exists(os.path.join(builddir, "cmake_install.cmake")):
        dest = os.path.join(tmp, "destdir")
        r = subprocess.run(["cmake", "--install", builddir, "--prefix", "/usr/local"],
                           env=dict(os.environ, DESTDIR=dest), capture_output=True)
        check(r.returncode == 0 and
              os.access(os.path.join(dest, "usr/local/bin/mailtap"), os.X_OK) and
              os.path.isfile(os.path.join(dest, "usr/local/share/man/man1/mailtap.1")),
              "cmake --install: binary and man page")

    # --workers: the same events, in another order
    others = sorted(os.path.join(a.samples, f) for f in os.listdir(a.samples) if f.endswith(".pcap"))
    args = []
    for p in others:
        args += ["-r", p]
    rc1, out1, _ = run(args + ["--json"])
    for n in ("2", "3"):
        rcn, outn, _ = run(args + ["--json", "--workers", n])
        check(rcn == rc1 and sorted(out1.splitlines()) == sorted(outn.splitlines()),
              f"--workers {n} gives the same events as one worker")
    rc, out, err = run(["-i", "lo", "--workers", "2"])
    check(rc == 1, "--workers with -i is a usage error")

    print(f"{PASSES[0]} passed, {len(FAILS)} failed")
    if FAILS:
        print(f"files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
