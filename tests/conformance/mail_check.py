#!/usr/bin/env python3
"""Mail conformance suite: mailtap against what Suricata and Zeek expect.

Runs mailtap over the public corpus (suricata-verify cases and Zeek btest
traces with their baselines, see ../shared/corpus/README.md) and compares
what both tools speak of: SMTP envelopes, the From/To/Cc/Subject headers,
attachment names, sizes and hashes, the number of messages, SMTP and POP3
command sequences, STARTTLS.  Every difference must be listed in
mail_expected.txt as `<case> <field> <reason-id>` (reasons: MAIL.md); a
difference not listed fails, and so does a listed one that no longer occurs.

  mail_check.py --mailtap BIN --corpus DIR [-v] [--case SUBSTR] [--keep DIR]

Standard library only.  Exits 0 printing "SKIP: corpus not found" when DIR
does not exist.
"""
import argparse
import email
import email.policy
import email.utils
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(HERE, "mail_expected.txt")

# The Suricata version whose expectations apply (filters carry
# `requires: min-version/lt-version/version`).  The corpus is aligned with
# 8.0.7, the release that defers SMTP transaction completion to the reply.
SURICATA_VERSION = (8, 0, 7)

# Zeek baselines whose test script is not part of the corpus: the trace
# they were produced from (checked by hand against the baseline's content).
ZEEK_TRACE_FALLBACK = {
    "scripts.base.frameworks.file-analysis.smtp": "smtp.pcap",
}


# --------------------------------------------------------------------------
# A YAML subset: block mappings and sequences by indentation, plain and
# quoted scalars, flow sequences of scalars, comments.  Enough for the
# suricata-verify test.yaml files.

class YamlError(Exception):
    pass


def _strip_comment(line):
    out, q, i = [], None, 0
    while i < len(line):
        c = line[i]
        if q:
            out.append(c)
            if q == '"' and c == "\\" and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif c == q:
                if q == "'" and i + 1 < len(line) and line[i + 1] == "'":
                    out.append("'")
                    i += 1
                else:
                    q = None
        else:
            if c == "#" and (i == 0 or line[i - 1] in " \t"):
                break
            if c in "\"'" and (not out or "".join(out).rstrip()[-1:] in ("", ":", "-", "[", ",")):
                q = c
            out.append(c)
        i += 1
    return "".join(out).rstrip()


_DQ_ESC = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", '"': '"', "\\": "\\", "/": "/",
           "a": "\a", "b": "\b", "e": "\x1b", " ": " "}


def _scalar(s):
    s = s.strip()
    if s == "":
        return None
    if s[0] == '"' and s[-1] == '"' and len(s) >= 2:
        body, out, i = s[1:-1], [], 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                n = body[i + 1]
                if n == "x":
                    out.append(chr(int(body[i + 2:i + 4], 16)))
                    i += 4
                    continue
                if n == "u":
                    out.append(chr(int(body[i + 2:i + 6], 16)))
                    i += 6
                    continue
                out.append(_DQ_ESC.get(n, n))
                i += 2
                continue
            out.append(c)
            i += 1
        return "".join(out)
    if s[0] == "'" and s[-1] == "'" and len(s) >= 2:
        return s[1:-1].replace("''", "'")
    if s[0] == "[" and s[-1] == "]":
        return _flow_seq(s[1:-1])
    if s in ("true", "True", "yes"):
        return True
    if s in ("false", "False", "no"):
        return False
    if s in ("null", "~"):
        return None
    if re.fullmatch(r"-?[0-9]+", s):
        return int(s)
    if re.fullmatch(r"-?[0-9]+\.[0-9]+", s):
        return float(s)
    return s


def _flow_seq(body):
    items, cur, q = [], [], None
    for c in body:
        if q:
            cur.append(c)
            if c == q:
                q = None
        elif c in "\"'":
            q = c
            cur.append(c)
        elif c == ",":
            items.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        items.append("".join(cur))
    return [_scalar(i) for i in items]


def _split_key(text):
    """'key: value' -> (key, value) or None when the line is not a mapping."""
    if text[:1] in "\"'":
        q = text[0]
        end = text.find(q, 1)
        if end > 0 and text[end + 1:end + 2] == ":":
            return text[1:end], text[end + 2:].strip()
        return None
    m = re.match(r"([^\s:][^:]*?):(\s+|$)(.*)$", text)
    if not m:
        return None
    return m.group(1).strip(), m.group(3).strip()


def yaml_load(text):
    lines = []
    for raw in text.splitlines():
        if raw.strip() in ("---", "..."):
            continue
        s = _strip_comment(raw)
        if s.strip():
            lines.append((len(s) - len(s.lstrip(" ")), s.strip()))
    pos = [0]

    def block(indent):
        if pos[0] >= len(lines):
            return None
        ind, text = lines[pos[0]]
        if text.startswith("- ") or text == "-":
            return seq(ind)
        return mapping(ind)

    def seq(ind):
        out = []
        while pos[0] < len(lines):
            i, text = lines[pos[0]]
            if i != ind or not (text.startswith("- ") or text == "-"):
                if i > ind:
                    raise YamlError("bad indentation at %r" % text)
                break
            rest = text[1:].strip()
            if not rest:
                pos[0] += 1
                out.append(block(ind + 1))
                continue
            kv = _split_key(rest)
            if kv is None:
                out.append(_scalar(rest))
                pos[0] += 1
                continue
            # "- key: value" opens a mapping whose keys sit at ind+2
            lines[pos[0]] = (ind + 2 + (len(text) - 1 - len(text[1:].lstrip()) - 1), rest)
            out.append(mapping(lines[pos[0]][0]))
        return out

    def mapping(ind):
        out = {}
        while pos[0] < len(lines):
            i, text = lines[pos[0]]
            if i < ind:
                break
            if i > ind:
                raise YamlError("bad indentation at %r" % text)
            if text.startswith("- "):
                break
            kv = _split_key(text)
            if kv is None:
                raise YamlError("not a mapping entry: %r" % text)
            k, v = kv
            pos[0] += 1
            if v == "":
                if pos[0] < len(lines) and (lines[pos[0]][0] > ind or
                                            (lines[pos[0]][0] == ind and lines[pos[0]][1].startswith("- "))):
                    out[k] = block(lines[pos[0]][0])
                else:
                    out[k] = None
            else:
                out[k] = _scalar(v)
        return out

    result = block(0)
    if pos[0] != len(lines):
        raise YamlError("trailing content at %r" % (lines[pos[0]][1],))
    return result


# --------------------------------------------------------------------------
# Running mailtap and indexing its output.

class Run:
    def __init__(self, events, rc, stderr):
        self.rc = rc
        self.stderr = stderr
        self.events = events
        self.sessions = {}
        self.commands = {}
        self.messages = []
        self.tls = set()
        for e in events:
            t = e.get("type")
            if t == "session":
                self.sessions[e["session"]] = e
            elif t == "command":
                self.commands.setdefault(e["session"], []).append(e)
            elif t == "message":
                self.messages.append(e)
            elif t == "tls":
                self.tls.add(e["session"])
        self._hashes = None
        self._data = {}

    def proto_sessions(self, proto):
        return sorted(s for s, e in self.sessions.items() if e.get("proto") == proto)

    def smtp_messages(self):
        return [m for m in self.messages if m.get("proto") == "smtp"]

    def session_of(self, orig_h, orig_p, resp_h, resp_p):
        for sid, s in self.sessions.items():
            c, v = s.get("client") or {}, s.get("server") or {}
            if (c.get("ip"), c.get("port"), v.get("ip"), v.get("port")) == (orig_h, orig_p, resp_h, resp_p):
                return sid
        return None

    def part_data(self, part, msg):
        """The decoded bytes of a part, when they can be had (see part_hashes)."""
        f = part.get("file")
        if f and os.path.exists(f):
            with open(f, "rb") as fh:
                return fh.read()
        self.part_hashes(part, msg)
        return self._data.get((msg.get("file"), part.get("sha256")))

    def part_hashes(self, part, msg):
        """md5/sha1/sha256 of a part's decoded bytes as mailtap gives them:
        from the extracted file when there is one, else from the message's
        .eml re-decoded here, accepted only if its sha256 equals mailtap's."""
        f = part.get("file")
        if f and os.path.exists(f):
            with open(f, "rb") as fh:
                data = fh.read()
            return _hashes(data)
        if self._hashes is None:
            self._hashes = {}
            self._data = {}
        key = msg.get("file")
        if key not in self._hashes:
            table = {}
            if key and os.path.exists(key):
                with open(key, "rb") as fh:
                    raw = fh.read()
                try:
                    em = email.message_from_bytes(raw, policy=email.policy.compat32)
                    for p in em.walk():
                        if p.is_multipart():
                            continue
                        data = p.get_payload(decode=True) or b""
                        h = _hashes(data)
                        table[h["sha256"]] = h
                        self._data[(key, h["sha256"])] = data
                except Exception:
                    pass
            self._hashes[key] = table
        if part.get("sha256") and part["sha256"] in self._hashes[key]:
            return self._hashes[key][part["sha256"]]
        return {"sha256": part.get("sha256")}


def _hashes(data):
    return {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def run_mailtap(mailtap, pcap, workdir, name):
    out = os.path.join(workdir, re.sub(r"[^A-Za-z0-9._-]", "_", name))
    os.makedirs(out, exist_ok=True)
    src = pcap
    if pcap.endswith(".gz"):
        src = os.path.join(out, "capture.pcap")
        with gzip.open(pcap, "rb") as fi, open(src, "wb") as fo:
            fo.write(fi.read())
    ext = os.path.join(out, "x")
    if os.path.isdir(ext):   # a kept directory from an earlier run
        shutil.rmtree(ext)
    os.makedirs(ext, exist_ok=True)
    r = subprocess.run([mailtap, "-q", "-r", src, "--json", "-x", ext], capture_output=True)
    events = []
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        if line.strip():
            events.append(json.loads(line))
    return Run(events, r.returncode, r.stderr.decode("utf-8", "replace"))


# --------------------------------------------------------------------------
# Probing which dissectors this build has (POP3 and IMAP land separately).

def _pcap_session(port, c2s, s2c_first, s2c_after):
    """A minimal Ethernet/IPv4/TCP capture: handshake, server greeting,
    one client line, one server reply."""
    cli, srv = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    cport = 40000
    pkts = []
    seq = {"c": 1000, "s": 5000}

    def tcp(src_is_client, flags, payload=b""):
        sip, dip = (cli, srv) if src_is_client else (srv, cli)
        sp, dp = (cport, port) if src_is_client else (port, cport)
        me, peer = ("c", "s") if src_is_client else ("s", "c")
        th = struct.pack("!HHIIBBHHH", sp, dp, seq[me], seq[peer], 5 << 4, flags, 65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th) + len(payload), 1, 0, 64, 6, 0, sip, dip)
        eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
        seq[me] += len(payload) + (1 if flags & 0x03 else 0)
        pkts.append(eth + ip + th + payload)

    tcp(True, 0x02)
    seq["c"] -= 0
    tcp(False, 0x12)
    tcp(True, 0x10)
    tcp(False, 0x18, s2c_first)
    tcp(True, 0x18, c2s)
    tcp(False, 0x18, s2c_after)
    data = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
    for i, p in enumerate(pkts):
        data += struct.pack("<IIII", 1700000000 + i, 0, len(p), len(p)) + p
    return data


def probe_protocols(mailtap, workdir):
    have = {"smtp": True}
    probes = {
        "pop3": (110, b"CAPA\r\n", b"+OK POP3 ready\r\n", b"+OK\r\nUSER\r\n.\r\n"),
        "imap": (143, b"a1 CAPABILITY\r\n", b"* OK IMAP4rev1 ready\r\n",
                 b"* CAPABILITY IMAP4rev1\r\na1 OK done\r\n"),
    }
    for proto, (port, c2s, s1, s2) in probes.items():
        path = os.path.join(workdir, "probe-%s.pcap" % proto)
        with open(path, "wb") as f:
            f.write(_pcap_session(port, c2s, s1, s2))
        r = run_mailtap(mailtap, path, workdir, "probe-" + proto)
        have[proto] = any(e.get("type") == "command" and e.get("proto") == proto for e in r.events)
    return have


# --------------------------------------------------------------------------
# Comparison helpers.

class Case:
    def __init__(self, name, source):
        self.name = name
        self.source = source
        self.results = []   # (field, expected, actual, ok)
        self.skipped = []   # reasons
        self.notes = []

    def check(self, field, expected, actual, ok=None, why=None):
        """why: {reason-id: bool}, whether the difference is of that kind,
        for reasons that need the data to tell (see REASON_CHECKS)."""
        if ok is None:
            ok = expected == actual
        self.results.append((field, expected, actual, bool(ok), why or {}))
        return ok


def _crlf_short(want, got):
    return isinstance(want, int) and isinstance(got, int) and want - got == 2


# A listed difference must also be of the kind its reason says, where that
# can be told from the two values; otherwise it is reported as a failure.
REASON_CHECKS = {
    "zeek-keeps-delimiter-crlf": lambda w, g: _crlf_short(w, g),
    "suricata-drops-final-crlf": lambda w, g: _crlf_short(g, w),
    "bare-cr-kept": lambda w, g: isinstance(g, str) and g == w + "\r",
    "suricata-filename-cap": lambda w, g: isinstance(w, str) and len(w.encode()) <= 255 and any(
        isinstance(n, str) and n != w and n.startswith(w) for n in (g if isinstance(g, list) else [g])),
    "suricata-line-cap": lambda w, g: isinstance(w, str) and any(
        isinstance(n, str) and n.startswith(w.rstrip("\r")) for n in (g if isinstance(g, list) else [g])),
}


def strip_brackets(a):
    if a is None:
        return None
    a = a.strip()
    if a.startswith("<") and ">" in a:
        a = a[1:a.index(">")]
    return a.strip()


def addr_list(value):
    """Header value -> list of (display name, addr-spec) as Python parses it."""
    if value is None:
        return []
    if isinstance(value, list):
        value = ", ".join(value)
    return [(n.strip(), a.strip()) for n, a in email.utils.getaddresses([value]) if n or a]


def fmt_addrs(pairs):
    return ", ".join(("%s <%s>" % (n, a)) if n else a for n, a in pairs)


def leaf_parts(msg, nonempty=False):
    """The parts that hold content (not multipart/* nor a message/rfc822
    whose inner parts are listed).  With nonempty, only those with at least
    one byte: Zeek makes no file for an empty entity."""
    parts = msg.get("parts") or []
    paths = [p.get("path") or "" for p in parts]
    out = []
    for p in parts:
        path = p.get("path") or ""
        if (p.get("content_type") or "").startswith("multipart/"):
            continue
        if any(q.startswith(path + ".") for q in paths):
            continue
        if nonempty and not p.get("size"):
            continue
        out.append(p)
    return out


def cmd_addr(arg):
    """'from:<a@b> SIZE=1' / 'TO: <a@b>' -> '<a@b>' (the path as sent)."""
    m = re.match(r"\s*(?:from|to)\s*:\s*(<[^>]*>|\S+)", arg or "", re.I)
    return m.group(1) if m else None


def envelope_only_transactions(run):
    """MAIL transactions after which no DATA/BDAT was sent before the next
    MAIL, RSET, HELO/EHLO or the end: (session, mail_from, [rcpt...])."""
    out = []
    for sid, cmds in run.commands.items():
        if run.sessions.get(sid, {}).get("proto") != "smtp":
            continue
        cur = None
        for c in cmds:
            v = (c.get("verb") or "").upper()
            if v == "MAIL":
                if cur:
                    out.append(cur)
                cur = (sid, cmd_addr(c.get("arg")), [])
            elif v == "RCPT" and cur:
                a = cmd_addr(c.get("arg"))
                if a:
                    cur[2].append(a)
            elif v in ("DATA", "BDAT"):
                cur = None
            elif v in ("RSET", "HELO", "EHLO", "QUIT") and cur:
                out.append(cur)
                cur = None
        if cur:
            out.append(cur)
    return out


# --------------------------------------------------------------------------
# Suricata.

def version_ok(req):
    if not isinstance(req, dict):
        return True

    def v(x):
        return tuple(int(p) for p in str(x).split(".") if p.isdigit())

    def pad(t):
        return t + (0,) * (3 - len(t))
    if "min-version" in req and pad(SURICATA_VERSION) < pad(v(req["min-version"])):
        return False
    if "lt-version" in req and not pad(SURICATA_VERSION) < pad(v(req["lt-version"])):
        return False
    if "version" in req:
        want = v(req["version"])
        if SURICATA_VERSION[:len(want)] != want:
            return False
    return True


MSG_KEY = re.compile(r"^(smtp\.mail_from|smtp\.rcpt_to\[\d+\]|email\.(from|subject|status)|"
                     r"email\.(to|cc|attachment|received)\[\d+\]|files\[\d+\]\.(filename|size))$")


def msg_key_value(run, msg, key):
    """What mailtap says for a Suricata eve key about one message."""
    h = msg.get("headers") or {}
    m = re.match(r"^(.*)\[(\d+)\](.*)$", key)
    if key == "smtp.mail_from":
        return msg.get("mail_from")
    if key == "email.from":
        return fmt_addrs(addr_list(h.get("from"))) or None
    if key == "email.subject":
        return h.get("subject")
    if key in ("smtp.rcpt_to", "email.to", "email.cc", "email.attachment"):
        if key == "smtp.rcpt_to":
            lst = msg.get("rcpt_to") or []
        elif key == "email.attachment":
            lst = [p.get("filename") for p in msg.get("parts") or [] if p.get("filename")]
        else:
            lst = [fmt_addrs([p]) for p in addr_list(h.get(key[6:]))]
        return lst or None
    if key == "email.status":
        return "PARSE_DONE" if msg.get("complete") and not msg.get("truncated") else "INCOMPLETE"
    if m:
        base, i, tail = m.group(1), int(m.group(2)), m.group(3)
        if base == "smtp.rcpt_to":
            lst = msg.get("rcpt_to") or []
        elif base in ("email.to", "email.cc"):
            lst = [fmt_addrs([p]) for p in addr_list(h.get(base[6:]))]
        elif base == "email.received":
            lst = eml_received(msg)
        elif base == "email.attachment" or (base == "files" and tail == ".filename"):
            lst = [p.get("filename") for p in msg.get("parts") or [] if p.get("filename")]
        elif base == "files" and tail == ".size":
            lst = [p.get("size") for p in msg.get("parts") or [] if p.get("filename")]
        else:
            return None
        return lst[i] if i < len(lst) else None
    return None


def eml_received(msg):
    """The Received: headers of mailtap's saved message, unfolded the way
    Suricata logs them (line breaks and the indentation after them removed)."""
    f = msg.get("file")
    if not f or not os.path.exists(f):
        return []
    with open(f, "rb") as fh:
        em = email.message_from_bytes(fh.read(), policy=email.policy.compat32)
    return [re.sub(r"\r?\n[ \t]*", "", str(v)) for v in em.get_all("Received") or []]


def suri_expect_value(key, val):
    if key in ("email.from",) or re.match(r"email\.(to|cc)\[", key or ""):
        return fmt_addrs(addr_list(val)) or val
    return val


def suri_not_has(run, msg, key):
    """True when mailtap agrees the key is absent for this message."""
    if key == "email":
        return msg is None
    if msg is None:
        return True
    return msg_key_value(run, msg, key) in (None, "")


def suricata_case(mailtap, d, name, workdir, have):
    case = Case(name, "suricata-verify")
    y = os.path.join(d, "test.yaml")
    with open(y, encoding="utf-8") as f:
        doc = yaml_load(f.read()) or {}
    if not version_ok(doc.get("requires")):
        case.skipped.append("requires another Suricata version")
        return case
    pcap = doc.get("pcap")
    pcaps = [os.path.join(d, pcap)] if pcap else sorted(
        os.path.join(d, p) for p in os.listdir(d) if p.endswith((".pcap", ".pcapng", ".pcap.gz")))
    if len(pcaps) != 1:
        case.skipped.append("no single capture")
        return case
    run = None

    def get_run():
        nonlocal run
        if run is None:
            run = run_mailtap(mailtap, pcaps[0], workdir, name)
            if run.rc not in (0, 2):
                case.check("mailtap.exit", 0, run.rc)
        return run

    for k, chk in enumerate(doc.get("checks") or []):
        if not isinstance(chk, dict) or "filter" not in chk:
            continue
        flt = chk["filter"] or {}
        if not version_ok(flt.get("requires")):
            continue
        match = flt.get("match") or {}
        count = flt.get("count")
        et = match.get("event_type")
        p = "check%d." % k
        keys = [kk for kk in match if MSG_KEY.match(kk)]
        not_has = match.get("not-has-key") or []
        if isinstance(not_has, str):
            not_has = [not_has]
        pop3_keys = [kk for kk in match if kk.startswith("pop3.")]

        if et == "pop3" or pop3_keys:
            if not have.get("pop3"):
                case.skipped.append(p + "pop3 (no POP3 dissector in this build)")
                continue
            suricata_pop3(case, get_run(), p, match, count)
            continue
        if et == "fileinfo":
            suricata_fileinfo(case, get_run(), p, match, count)
            continue
        if et not in (None, "smtp", "alert"):
            continue
        if et == "alert" and not keys:
            continue
        if count == 0:
            continue  # Suricata-internal transactions (trailing QUIT, ...)
        r = get_run()
        if not keys and "email" in not_has:
            # "no email was parsed in this session"
            case.check(p + "not-has-key.email", 0, len(r.smtp_messages()))
            continue
        if not keys:
            # A transaction with nothing but absent fields (and perhaps a
            # HELO) is not a message; only its HELO is comparable.
            if "smtp.helo" in match:
                helos = [c.get("arg") for cmds in r.commands.values() for c in cmds
                         if (c.get("verb") or "").upper() in ("HELO", "EHLO")]
                case.check(p + "smtp.helo", match["smtp.helo"],
                           match["smtp.helo"] if match["smtp.helo"] in helos else helos)
            elif et == "smtp" and set(match) <= {"event_type"}:
                case.check(p + "count", count, len(r.smtp_messages()))
            continue
        suricata_tx(case, r, p, match, keys, not_has, count, et)
    if run is not None:
        case.notes.append("mailtap exit %d" % run.rc)
    return case


def suricata_tx(case, run, p, match, keys, not_has, count, et):
    msgs = run.smtp_messages()

    def score(m):
        s = 0
        for kk in keys:
            if msg_key_value(run, m, kk) == suri_expect_value(kk, match[kk]):
                s += 1
        for kk in not_has:
            if suri_not_has(run, m, kk):
                s += 1
        return s
    total = len(keys) + len(not_has)
    full = [m for m in msgs if score(m) == total]
    want = count if et != "alert" else None
    if full and (want is None or len(full) == want):
        for kk in keys:
            case.check(p + kk, match[kk], match[kk])
        for kk in not_has:
            case.check(p + "not-has-key." + kk, "absent", "absent")
        if "smtp.helo" in match:
            check_helo(case, run, p, match["smtp.helo"], full[0])
        return
    if full and want is not None:
        case.check(p + "count", want, len(full))
        return
    # No message matches.  An envelope-only transaction (MAIL without DATA or
    # BDAT) is logged by Suricata but is not a message for mailtap: compare
    # it with the MAIL and RCPT commands.
    email_keys = [kk for kk in keys if not kk.startswith("smtp.")]
    if not email_keys and "smtp.mail_from" in match:
        for sid, mf, rcpts in envelope_only_transactions(run):
            if mf != match["smtp.mail_from"]:
                continue
            ok = True
            for kk in keys:
                mm = re.match(r"smtp\.rcpt_to\[(\d+)\]", kk)
                if mm and (int(mm.group(1)) >= len(rcpts) or rcpts[int(mm.group(1))] != match[kk]):
                    ok = False
            for kk in not_has:
                mm = re.match(r"smtp\.rcpt_to\[(\d+)\]", kk)
                if mm and int(mm.group(1)) < len(rcpts):
                    ok = False
            if ok:
                case.check(p + "envelope-only", "MAIL transaction without a message",
                           "MAIL transaction without a message")
                return
    best = max(msgs, key=score) if msgs else None
    if best is None:
        case.check(p + "message", "a message", "no message")
        return
    for kk in keys:
        case.check(p + kk, suri_expect_value(kk, match[kk]), msg_key_value(run, best, kk))
    for kk in not_has:
        case.check(p + "not-has-key." + kk, "absent", "absent" if suri_not_has(run, best, kk)
                   else msg_key_value(run, best, kk))


def check_helo(case, run, p, helo, msg):
    # mailtap keeps the name of the HELO/EHLO the server accepted, in the
    # session record (a rejected "ehlo" with no name does not replace it)
    sess = run.sessions.get(msg["session"], {})
    case.check(p + "smtp.helo", helo, sess.get("helo"))


def suricata_fileinfo(case, run, p, match, count):
    parts = [(m, pt) for m in run.messages for pt in m.get("parts") or []]
    sel = parts
    if "fileinfo.filename" in match:
        sel = [(m, pt) for m, pt in sel if pt.get("filename") == match["fileinfo.filename"]]
        if not sel:
            names = [pt.get("filename") for m, pt in parts if pt.get("filename")]
            case.check(p + "fileinfo.filename", match["fileinfo.filename"], names)
            return
    elif "fileinfo.sha256" in match:
        sel = [(m, pt) for m, pt in sel if pt.get("sha256") == match["fileinfo.sha256"]]
        if not sel:
            case.check(p + "fileinfo.sha256", match["fileinfo.sha256"],
                       [pt.get("sha256") for m, pt in parts if pt.get("filename")])
            return
    elif "fileinfo.size" in match:
        sel = [(m, pt) for m, pt in sel if pt.get("filename") and pt.get("size") == match["fileinfo.size"]]
    if "fileinfo.state" in match and match["fileinfo.state"] == "TRUNCATED":
        sel = [(m, pt) for m, pt in parts if pt.get("filename") and not m.get("complete")]
        case.check(p + "fileinfo.state", "TRUNCATED", "TRUNCATED" if sel else "CLOSED")
    if count is not None and count > 0:
        case.check(p + "count", count, len(sel))
    if not sel:
        return
    m, pt = sel[0]
    for kk in ("fileinfo.filename", "fileinfo.sha256", "fileinfo.size"):
        if kk in match:
            got = {"fileinfo.filename": pt.get("filename"), "fileinfo.sha256": pt.get("sha256"),
                   "fileinfo.size": pt.get("size")}[kk]
            case.check(p + kk, match[kk], got)
    for kk in ("smtp.mail_from", "email.from"):
        if kk in match:
            case.check(p + kk, suri_expect_value(kk, match[kk]), msg_key_value(run, m, kk))


def suricata_pop3(case, run, p, match, count):
    cmds = [c for s in run.proto_sessions("pop3") for c in run.commands.get(s, [])]
    want = match.get("pop3.request.command")
    if want is None:
        if count is not None and set(match) <= {"event_type"}:
            greet = sum(1 for s in run.proto_sessions("pop3")
                        if any(e.get("type") == "reply" and e.get("session") == s for e in run.events))
            case.check(p + "count", count, len(cmds) + greet)
        return
    if want == "<SASL DATA>":
        sel = [c for c in cmds if c.get("auth_data")]
    else:
        sel = [c for c in cmds if (c.get("verb") or "").upper() == want.upper() and not c.get("auth_data")]
    if "pop3.request.args[0]" in match:
        sel = [c for c in sel if (c.get("arg") or "").split(" ")[0] == str(match["pop3.request.args[0]"])]
    if "pop3.response.success" in match and len(sel) > (count or 0):
        # several of the same command: keep the ones whose reply agrees
        ok = "+OK" if match["pop3.response.success"] else "-ERR"
        replies = {e.get("cmd_pkt"): e.get("code") for e in run.events if e.get("type") == "reply"}
        sel2 = [c for c in sel if replies.get(c.get("pkt")) == ok]
        if sel2:
            sel = sel2
    case.check(p + "pop3.request.command=" + want, count, len(sel))
    if want.upper() in ("RETR", "TOP") and match.get("pop3.response.success") is True:
        # each successful RETR/TOP carried a message
        n = sum(1 for m in run.messages if m.get("proto") == "pop3" and m.get("source") == want.upper())
        case.check(p + "messages(%s)" % want.upper(), count, n)


# --------------------------------------------------------------------------
# Zeek.

def read_zeek_log(path):
    """A Zeek ASCII log (or a zeek-cut -m cut of one) -> list of dicts."""
    rows, fields = [], None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("### ") or not line:
                continue
            if line.startswith("#fields\t"):
                fields = line.split("\t")[1:]
                continue
            if line.startswith("#"):
                continue
            if fields is None:
                fields = line.split("\t")
                continue
            vals = line.split("\t")
            rows.append(dict(zip(fields, vals)))
    return rows


def zset(v):
    if v in (None, "-", "(empty)"):
        return []
    return v.split(",")


def zval(v):
    return None if v in (None, "-", "(empty)") else v


def zeek_unescape(s):
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def zeek_trace(corpus, base):
    parts = base.split(".")
    if base in ZEEK_TRACE_FALLBACK:
        return os.path.join(corpus, "zeek", "traces", ZEEK_TRACE_FALLBACK[base])
    if len(parts) < 5 or parts[2] != "protocols":
        return None
    proto, test = parts[3], ".".join(parts[4:])
    tdir = os.path.join(corpus, "zeek", "tests", proto)
    for ext in (".zeek", ".test"):
        t = os.path.join(tdir, test + ext)
        if os.path.exists(t):
            with open(t, encoding="utf-8") as f:
                m = re.search(r"\$TRACES/(\S+)", f.read())
            if m:
                return os.path.join(corpus, "zeek", "traces", m.group(1))
    return None


def zeek_case(mailtap, corpus, base, workdir, have):
    name = "zeek:" + base.replace("scripts.base.", "")
    case = Case(name, "zeek")
    bdir = os.path.join(corpus, "zeek", "baselines", base)
    trace = zeek_trace(corpus, base)
    if not trace or not os.path.exists(trace):
        case.skipped.append("trace not found")
        return case
    proto = "pop3" if ".pop3." in base else "imap" if ".imap." in base else "smtp"
    if not have.get(proto):
        case.skipped.append("no %s dissector in this build" % proto.upper())
        return case
    run = run_mailtap(mailtap, trace, workdir, name)
    if run.rc not in (0, 2):
        case.check("mailtap.exit", 0, run.rc)
    files = os.listdir(bdir)
    uid_session = {}
    for fn in ("conn.log", "conn.log.cut", "smtp.log"):
        if fn in files:
            for row in read_zeek_log(os.path.join(bdir, fn)):
                try:
                    sid = run.session_of(row["id.orig_h"], int(row["id.orig_p"]),
                                         row["id.resp_h"], int(row["id.resp_p"]))
                except (KeyError, ValueError):
                    continue
                if sid is not None:
                    uid_session[row["uid"]] = sid
    # Logs cut without the connection's endpoints: give their uids, in order
    # of first appearance, the remaining sessions of the protocol in order.
    for fn in sorted(files):
        if fn.endswith((".cut", ".log")) or fn in ("out",):
            path = os.path.join(bdir, fn)
            if fn == "out":
                continue
            for row in read_zeek_log(path):
                uid = row.get("uid")
                if uid and uid.startswith("C") and uid not in uid_session:
                    free = [s for s in run.proto_sessions(proto) if s not in uid_session.values()]
                    if free:
                        uid_session[uid] = free[0]
    used = set()
    if "smtp.log" in files:
        zeek_smtp_log(case, run, read_zeek_log(os.path.join(bdir, "smtp.log")), uid_session, used)
    for fn in ("files.log", "files.log.cut", "files.cut"):
        if fn in files:
            zeek_files(case, run, read_zeek_log(os.path.join(bdir, fn)), uid_session, fn)
    for fn in ("out", "output", ".stdout"):
        if fn in files:
            zeek_out(case, run, bdir, fn, proto, uid_session)
    if "ssl.log" in files and "smtp.log" not in files:
        # Zeek saw TLS after STARTTLS/STLS on the mail connection
        case.check("ssl.log.starttls", True,
                   any(s.get("starttls") for s in run.sessions.values() if s.get("proto") == proto))
    if base.endswith("file-analysis.smtp"):
        zeek_file_analysis_out(case, run, bdir)
    return case


def msg_session_index(run):
    by = {}
    for m in run.messages:
        by.setdefault(m["session"], []).append(m)
    return by


def zeek_row_has_message(row):
    """Whether a smtp.log transaction carried a message: it has headers or
    files, or its last reply accepted an envelope (2xx after MAIL+RCPT; a
    rejected transaction ends on the rejection)."""
    if any(zval(row.get(f)) for f in ("from", "to", "subject", "msg_id", "date")) or zset(row.get("fuids")):
        return True
    return bool(zval(row.get("mailfrom")) and zset(row.get("rcptto")) and
                (zval(row.get("last_reply")) or "").startswith("2"))


def zeek_smtp_log(case, run, rows, uid_session, used):
    by = msg_session_index(run)
    for n, row in enumerate(rows):
        p = "smtp.log[%d]." % n
        sid = uid_session.get(row["uid"])
        if row.get("tls") == "T":
            case.check(p + "tls", True, bool(sid in run.tls or run.sessions.get(sid, {}).get("starttls")))
        mf = zval(row.get("mailfrom"))
        rc = sorted(zset(row.get("rcptto")))
        if not zeek_row_has_message(row):
            continue   # a transaction that carried no message
        msgs = [m for m in by.get(sid, []) if id(m) not in used]
        if not msgs:
            case.check(p + "message", "a message", "no message")
            continue

        def score(m):
            h = m.get("headers") or {}
            return ((strip_brackets(m.get("mail_from")) == mf) +
                    (sorted(strip_brackets(a) for a in m.get("rcpt_to") or []) == rc) +
                    (h.get("subject") == zval(row.get("subject"))) +
                    (h.get("message_id") == zval(row.get("msg_id"))))
        m = max(msgs, key=score)
        used.add(id(m))
        h = m.get("headers") or {}
        case.check(p + "mailfrom", mf, strip_brackets(m.get("mail_from")))
        case.check(p + "rcptto", rc, sorted(strip_brackets(a) for a in m.get("rcpt_to") or []))
        case.check(p + "from", fmt_addrs(addr_list(zval(row.get("from")))), fmt_addrs(addr_list(h.get("from"))))
        for f in ("to", "cc"):
            case.check(p + f, sorted(addr_list(zset(row.get(f)))), sorted(addr_list(h.get(f))))
        subj = zval(row.get("subject"))
        case.check(p + "subject", zeek_unescape(subj) if subj else subj, h.get("subject"))
        case.check(p + "date", zval(row.get("date")), h.get("date"))
        case.check(p + "msg_id", zval(row.get("msg_id")), h.get("message_id"))
    # Number of messages per connection.
    for uid, sid in uid_session.items():
        zrows = [r for r in rows if r["uid"] == uid and zeek_row_has_message(r)]
        case.check("messages[%s]" % uid, len(zrows), len(by.get(sid, [])))


def zeek_files(case, run, rows, uid_session, fn):
    by = msg_session_index(run)
    per_uid = {}
    for r in rows:
        per_uid.setdefault(r.get("uid"), []).append(r)
    for uid, zrows in per_uid.items():
        sid = uid_session.get(uid)
        if sid is None and len(run.proto_sessions("smtp")) == 1 and len(per_uid) == 1:
            sid = run.proto_sessions("smtp")[0]
        msgs = by.get(sid, [])
        parts = [(m, pt) for m in msgs for pt in leaf_parts(m, nonempty=True)]
        msg_rows = [r for r in zrows if r.get("mime_type") == "message/rfc822"]
        part_rows = [r for r in zrows if r.get("mime_type") != "message/rfc822"]
        # Whole messages (SMTP::enable_rfc822_msg_file_analysis).
        for i, r in enumerate(msg_rows):
            p = "%s:msg[%d]." % (fn, i)
            if i >= len(msgs):
                case.check(p + "message", "a message", "no message")
                continue
            m = msgs[i]
            data = b""
            if m.get("file") and os.path.exists(m["file"]):
                with open(m["file"], "rb") as f:
                    data = f.read()
            if zval(r.get("seen_bytes")):
                case.check(p + "size", int(r["seen_bytes"]), m.get("size"))
            if zval(r.get("sha1")):
                case.check(p + "sha1", r["sha1"], hashlib.sha1(data).hexdigest())
        case.check("%s:parts[%s]" % (fn, uid), len(part_rows), len(parts))
        for i, r in enumerate(part_rows):
            p = "%s:part[%d]." % (fn, i)
            fname = zval(r.get("filename"))
            if fname is not None:
                cand = [(m, pt) for m, pt in parts if pt.get("filename") == zeek_unescape(fname)]
            else:
                cand = [parts[i]] if i < len(parts) else []
            if not cand:
                case.check(p + ("filename" if fname else "part"), fname or "a part",
                           [pt.get("filename") for m, pt in parts])
                continue
            m, pt = cand[0]
            if fname is not None:
                case.check(p + "filename", zeek_unescape(fname), pt.get("filename"))
            if zval(r.get("mime_type")):
                case.check(p + "mime_type", r["mime_type"], pt.get("content_type"))
            if zval(r.get("seen_bytes")):
                case.check(p + "size", int(r["seen_bytes"]), pt.get("size"))
            hs = None
            for alg in ("md5", "sha1", "sha256"):
                if zval(r.get(alg)):
                    hs = hs or run.part_hashes(pt, m)
                    case.check(p + alg, r[alg], hs.get(alg, "(not computable)"),
                               why=crlf_why(run, pt, m, alg, r[alg]))


def zeek_out(case, run, bdir, fn, proto, uid_session):
    with open(os.path.join(bdir, fn), encoding="utf-8", errors="surrogateescape") as f:
        lines = [l.rstrip("\n") for l in f if not l.startswith("### ")]
    if fn == "output":   # address-limits: Zeek caps at 500 and says so in weird.log
        counts = dict(re.findall(r"^(\w+), (\d+)$", "\n".join(lines), re.M))
        m = run.smtp_messages()
        if m and counts:
            m = m[0]
            h = m.get("headers") or {}
            got = {"rcptto": len(m.get("rcpt_to") or []), "to": len(addr_list(h.get("to"))),
                   "cc": len(addr_list(h.get("cc")))}
            for k in ("rcptto", "to", "cc"):
                if k in counts:
                    case.check("output." + k + ">=", int(counts[k]), got[k], got[k] >= int(counts[k]))
        return
    if fn == ".stdout":
        txt = "\n".join(lines)
        if "Tls started" in txt:
            case.check(".stdout.starttls", True, any(s.get("starttls") for s in run.sessions.values()))
        m = re.match(r"^\[(.*)\]$", txt.strip())
        if m:
            caps = [c.strip() for c in m.group(1).split(",")]
            got = [c for s in run.sessions.values() if s.get("proto") == proto for c in s.get("capabilities") or []]
            case.check(".stdout.capabilities", caps, got)
        return
    # "uid, T, CMD, arg" (smtp_request) or "uid, pop3_request, T, CMD, arg"
    # or "smtp_request, uid, T, CMD, arg".
    seqs, order = {}, []
    retr = {}   # uid -> successful RETR/TOP count (pop3_request then pop3_reply OK)
    last = {}
    for l in lines:
        f = l.split(", ", 4)
        if len(f) >= 4 and f[1] == "pop3_reply":
            if last.get(f[0]) in ("RETR", "TOP") and f[3] == "OK":
                retr[f[0]] = retr.get(f[0], 0) + 1
            last[f[0]] = None
            continue
        if len(f) >= 4 and f[1] == "pop3_request":
            last[f[0]] = f[3].upper()
        if len(f) >= 4 and f[1] == "T" and re.match(r"^C\w+$", f[0]) and not f[2].startswith("smtp_"):
            uid, cmd, arg = f[0], f[2], ", ".join(l.split(", ")[3:])
        elif len(f) == 5 and f[1] in ("pop3_request",) and f[2] == "T":
            uid, cmd, arg = f[0], f[3], f[4]
        elif len(f) == 5 and f[0] == "smtp_request" and f[2] == "T":
            uid, cmd, arg = f[1], f[3], f[4]
        else:
            continue
        if uid not in seqs:
            seqs[uid] = []
            order.append(uid)
        if cmd == "(UNKNOWN)" and not arg:
            continue   # Zeek's stand-in for what a gap hid: mailtap reports the gap instead
        seqs[uid].append((cmd.upper(), arg))
    if not seqs:
        return
    sess = run.proto_sessions(proto)
    for i, uid in enumerate(order):
        sid = uid_session.get(uid)
        if sid is None and i < len(sess):
            sid = sess[i]
        # Zeek raises no request event for a SASL response line.
        got = [((c.get("verb") or "").upper(), c.get("arg") or "")
               for c in run.commands.get(sid, []) if not c.get("auth_data")]
        want = seqs[uid]
        if proto == "pop3":
            n = sum(1 for m in run.messages if m.get("session") == sid and m.get("source") in ("RETR", "TOP"))
            case.check("out.messages[%s]" % uid, retr.get(uid, 0), n)
        if got == want:
            case.check("out.commands[%s]" % uid, len(want), len(got))
            continue
        # report the first divergence
        j = next((j for j in range(max(len(got), len(want)))
                  if j >= len(got) or j >= len(want) or got[j] != want[j]), 0)
        case.check("out.commands[%s]" % uid,
                   "#%d %s" % (j, " ".join(want[j]) if j < len(want) else "(end)"),
                   "#%d %s" % (j, " ".join(got[j]) if j < len(got) else "(end)"))


def crlf_why(run, part, msg, alg, want):
    """Whether Zeek's hash is that of mailtap's bytes plus the delimiter's CRLF."""
    data = run.part_data(part, msg)
    if data is None:
        return None
    return {"zeek-keeps-delimiter-crlf": hashlib.new(alg, data + b"\r\n").hexdigest() == want}


def zeek_file_analysis_out(case, run, bdir):
    """frameworks/file-analysis/smtp: per file, its size and MD5/SHA1/SHA256
    (the `out`), and the first bytes extracted (thefileN)."""
    with open(os.path.join(bdir, "out"), encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    blocks = [b for b in re.split(r"^FILE_NEW$", text, flags=re.M)[1:]
              if re.search(r"^source: SMTP$", b, re.M)]
    parts = [(m, pt) for m in run.smtp_messages() for pt in leaf_parts(m, nonempty=True)]
    case.check("out.files", len(blocks), len(parts))
    for i, b in enumerate(blocks):
        p = "out.file[%d]." % i
        if i >= len(parts):
            break
        m, pt = parts[i]
        hs = run.part_hashes(pt, m)
        sz = re.search(r"^file #\d+, (\d+), \d+$", b.split("FILE_STATE_REMOVE", 1)[-1], re.M)
        if sz:
            case.check(p + "size", int(sz.group(1)), pt.get("size"))
        for alg in ("MD5", "SHA1", "SHA256"):
            mm = re.search(r"^%s: ([0-9a-f]+)$" % alg, b, re.M)
            if mm:
                case.check(p + alg.lower(), mm.group(1), hs.get(alg.lower(), "(not computable)"),
                           why=crlf_why(run, pt, m, alg.lower(), mm.group(1)))


# --------------------------------------------------------------------------

def suricata_relevant(d):
    y = os.path.join(d, "test.yaml")
    if not os.path.exists(y):
        return False
    with open(y, encoding="utf-8") as f:
        t = f.read()
    return bool(re.search(r"^\s*(smtp\.|email\.|fileinfo\.|files\[|pop3\.|event_type:\s*(smtp|pop3|fileinfo)\b)",
                          t, re.M))


def zeek_relevant(corpus, base):
    return re.match(r"scripts\.base\.(protocols\.(smtp|pop3|imap)|frameworks\.file-analysis\.smtp)", base)


def load_expected():
    exp = {}
    if not os.path.exists(EXPECTED):
        return exp
    with open(EXPECTED, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3:
                sys.exit("%s:%d: want `<case> <field> <reason-id>`" % (EXPECTED, n))
            exp[(parts[0], parts[1])] = parts[2]
    return exp


def short(v, n=160):
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[:n] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--case", help="only cases whose name contains this")
    ap.add_argument("--keep", help="keep mailtap's output and extracted files under this directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every comparison")
    a = ap.parse_args()
    if not os.path.isdir(a.corpus):
        print("SKIP: corpus not found")
        return 0
    expected = load_expected()
    work = a.keep or tempfile.mkdtemp(prefix="mail_check.")
    os.makedirs(work, exist_ok=True)
    try:
        have = probe_protocols(a.mailtap, work)
        cases = []
        sv = os.path.join(a.corpus, "suricata-verify")
        for name in sorted(os.listdir(sv)) if os.path.isdir(sv) else []:
            d = os.path.join(sv, name)
            if a.case and a.case not in name:
                continue
            if suricata_relevant(d):
                cases.append(suricata_case(a.mailtap, d, name, work, have))
        zb = os.path.join(a.corpus, "zeek", "baselines")
        for base in sorted(os.listdir(zb)) if os.path.isdir(zb) else []:
            if a.case and a.case not in "zeek:" + base.replace("scripts.base.", ""):
                continue
            if zeek_relevant(a.corpus, base):
                cases.append(zeek_case(a.mailtap, a.corpus, base, work, have))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    passed = failed = expected_diff = 0
    seen = set()
    for c in cases:
        for reason in c.skipped:
            print("SKIP %s: %s" % (c.name, reason))
        for field, want, got, ok, why in c.results:
            key = (c.name, field)
            if ok:
                passed += 1
                if a.verbose:
                    print("ok   %s %s" % (c.name, field))
                continue
            if key in expected:
                reason = expected[key]
                kind_ok = why.get(reason)
                if kind_ok is None and reason in REASON_CHECKS and not why:
                    kind_ok = REASON_CHECKS[reason](want, got)
                if kind_ok is False:
                    failed += 1
                    seen.add(key)
                    print("FAIL %s %s: listed as %s, but the difference is not of that kind: "
                          "expected %s, mailtap %s" % (c.name, field, reason, short(want), short(got)))
                    continue
                seen.add(key)
                expected_diff += 1
                if a.verbose:
                    print("diff %s %s [%s]: expected %s, mailtap %s" % (
                        c.name, field, expected[key], short(want), short(got)))
                continue
            failed += 1
            print("FAIL %s %s: %s expects %s, mailtap gives %s" % (
                c.name, field, "Zeek" if c.source == "zeek" else "Suricata", short(want), short(got)))
    ran = {c.name for c in cases}
    for key, reason in sorted(expected.items()):
        if key in seen:
            continue
        if a.case and key[0] not in ran:
            continue
        skipped = any(c.name == key[0] and c.skipped and not c.results for c in cases)
        if skipped:
            continue
        failed += 1
        print("FAIL %s %s: listed in mail_expected.txt (%s) but no longer differs; remove the line"
              % (key[0], key[1], reason))
    print("%d passed, %d failed (%d known differences, %d cases)" % (
        passed + expected_diff, failed, expected_diff, len(cases)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
