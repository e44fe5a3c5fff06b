#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<harness>/).

Seeds come from the recorded samples (samples/*.pcap, samples/*.pcapng) and
from a few synthesized dialogues that cover what the samples may not (POP3,
IMAP literals, every SASL mechanism, pipelining, BDAT):

  capture   each sample file whole (cut to its first records if > 64 KiB),
            plus small hand-made pcap and pcapng files
  dissect   each TCP session's payload, packet by packet, in the input
            format of fuzz_dissect.c
  mime      each message sent with DATA (dot-unstuffed) or RETR, and the
            MIME test messages of tests/unit/data/mime/
  sasl      each AUTH / AUTHENTICATE exchange, in the format of fuzz_sasl.c
  imap_tok  each IMAP line (with its literals) of both directions

and, for any harness, the hand-written seeds of tests/fuzz/hand/<harness>/
as they are.

Every seed is at most 64 KiB.  File names are stable (derived from the
source), so regenerating shows a reviewable diff.  Standard library only.

usage: make_seeds.py [--samples DIR] [--out DIR] [--check]
"""
import argparse
import base64
import filecmp
import glob
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

SEED_MAX = 64 * 1024
IMAP_LINES = 12  # lines kept per direction of a recorded IMAP session
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

# ---------------------------------------------------------------- pcap input


def read_records(data):
    """Yields (linktype, ts_us, frame) from a pcap or pcapng file's bytes."""
    if len(data) < 4:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        if len(data) < 24:
            return
        linktype = struct.unpack(e + "I", data[20:24])[0] & 0xFFFF
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _orig = struct.unpack(e + "IIII", data[off:off + 16])
            off += 16
            if off + incl > len(data):
                return
            us = frac // 1000 if nano else frac
            yield linktype, sec * 1000000 + us, data[off:off + incl]
            off += incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        off = 0
        e = "<"
        links = []
        while off + 12 <= len(data):
            if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
                e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                links = []
            btype, blen = struct.unpack(e + "II", data[off:off + 8])
            if blen < 12 or off + blen > len(data):
                return
            body = data[off + 8:off + blen - 4]
            if btype == 1:
                links.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                ifid, hi, lo, cap, _orig = struct.unpack(e + "IIIII", body[:20])
                if ifid < len(links):
                    yield links[ifid], (hi << 32 | lo), body[20:20 + cap]
            elif btype == 3 and links and len(body) >= 4:
                orig = struct.unpack(e + "I", body[:4])[0]
                yield links[0], 0, body[4:4 + orig]
            off += blen


def ip_of_frame(linktype, f):
    """The IP datagram inside a link-layer frame, or None."""
    if linktype == 1:  # Ethernet, with VLAN tags
        off, et = 12, None
        while off + 2 <= len(f):
            et = struct.unpack(">H", f[off:off + 2])[0]
            if et in (0x8100, 0x88A8):
                off += 4
                continue
            break
        return f[off + 2:] if et in (0x0800, 0x86DD) else None
    if linktype == 113:  # Linux cooked
        return f[16:] if f[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 276:  # Linux cooked v2
        return f[20:] if f[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype in (0, 108):  # BSD loopback
        return f[4:]
    if linktype in (101, 12, 14, 228, 229):  # raw IP
        return f
    return None


def tcp_of_ip(ip):
    """(src, dst, sport, dport, seq, flags, payload) of a TCP segment, or None."""
    if not ip:
        return None
    v = ip[0] >> 4
    if v == 4 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6 or struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
            return None  # not TCP, or a fragment
        src, dst, t = ip[12:16], ip[16:20], ip[ihl:total if total else len(ip)]
    elif v == 6 and len(ip) >= 40:
        if ip[6] != 6:
            return None  # extension headers: not in our samples
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, t = ip[8:24], ip[24:40], ip[40:40 + plen]
    else:
        return None
    if len(t) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", t[:8])
    doff = (t[12] >> 4) * 4
    return src, dst, sport, dport, seq, t[13], bytes(t[doff:])


class Flow:
    def __init__(self, client, server):
        self.client, self.server = client, server  # (addr, port)
        self.handshake = False
        self.segments = []  # (dir, bytes) in capture order, new bytes only
        self.next = [None, None]
        self.streams = [bytearray(), bytearray()]


def flows_of(data):
    """TCP flows of a capture, each with its segments (retransmissions dropped)."""
    flows = {}
    order = []
    for lt, _ts, frame in read_records(data):
        t = tcp_of_ip(ip_of_frame(lt, frame))
        if not t:
            continue
        src, dst, sport, dport, seq, flags, payload = t
        a, b = (src, sport), (dst, dport)
        key = (min(a, b), max(a, b))
        fl = flows.get(key)
        if fl is None:
            syn_only = flags & 0x12 == 0x02
            synack = flags & 0x12 == 0x12
            if synack:
                fl = Flow(b, a)
            elif syn_only:
                fl = Flow(a, b)
            elif dport < sport:
                fl = Flow(a, b)
            else:
                fl = Flow(b, a)
            fl.handshake = syn_only or synack
            flows[key] = fl
            order.append(fl)
        d = 0 if a == fl.client else 1
        if flags & 0x02:
            fl.next[d] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        if fl.next[d] is None:
            fl.next[d] = seq
        skip = (fl.next[d] - seq) & 0xFFFFFFFF
        if skip >= len(payload) or skip > 0x7FFFFFFF:
            if skip > 0x7FFFFFFF:  # a hole ahead: take it as is
                fl.next[d] = seq
                skip = 0
            else:
                continue
        new = payload[skip:]
        fl.segments.append((d, new))
        fl.streams[d] += new
        fl.next[d] = (fl.next[d] + len(new)) & 0xFFFFFFFF
    return order


# ---------------------------------------------------------------- encoders

DISSECT_PORTS = [25, 587, 110, 143, 2525, 465, 993, 8025]
GREET_NONE, GREET_SMTP, GREET_POP3, GREET_IMAP = 0, 1, 2, 3


def dissect_seed(segments, port, handshake=True, greeting=GREET_NONE, tight=False):
    """Encodes [(dir, bytes)] in fuzz_dissect.c's input format."""
    pi = DISSECT_PORTS.index(port) if port in DISSECT_PORTS else 7
    cfg = greeting | pi << 2 | (0x20 if tight else 0) | (0 if handshake else 0x40)
    out = bytearray([cfg])
    for d, b in segments:
        while b:
            if len(b) <= 127:
                out.append(d << 7 | len(b))
                out += b
                b = b""
            else:
                k = min(len(b), 0xFFFF)
                out += bytes([d << 7, 0]) + struct.pack("<H", k) + b[:k]
                b = b[k:]
        if len(out) >= SEED_MAX:
            break
    return bytes(out[:SEED_MAX])


def late_conflict_seed():
    """An SMTP client whose 700 bytes nobody acknowledges (no greeting, ack
    numbers at the ISN), sent in 100-byte segments: fuzz_dissect.c's pinned
    run moves its window (every 512 bytes of input) after the sixth.  Then
    the last 200 bytes again, the first 20 of them (sent before the move)
    altered: a conflict only if the history kept the bytes it referred to
    when the window moved."""
    data = b"".join(b"%03d " % i + b"x" * 94 + b"\r\n" for i in range(7))
    out = bytearray([0x80])  # port 25, no greeting, ack numbers at the ISN
    for o in range(0, 700, 100):
        out.append(100)
        out += data[o:o + 100]
    again = bytearray(data[500:700])
    again[:20] = b"Z" * 20
    out += bytes([0, 3, 200]) + again
    return bytes(out)


SASL_MECHS = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "NTLM", "plain", "login",
              "cram-md5", "ntlm", "DIGEST-MD5", "SCRAM-SHA-1", "GSSAPI", "X-UNKNOWN", "", "APOP"]


def sasl_seed(mech, steps):
    """fuzz_sasl.c's format: mechanism index, then one line per step
    ('S' + Base64 for a challenge, Base64 for a response, '*' to cancel)."""
    m = mech.upper()
    idx = SASL_MECHS.index(m) if m in SASL_MECHS else SASL_MECHS.index("X-UNKNOWN")
    lines = []
    for d, b64 in steps:
        lines.append((b"S" if d == 1 else b"") + b64)
    return (bytes([idx]) + b"\n".join(lines))[:SEED_MAX]


def b64(b):
    return base64.b64encode(b)


# ---------------------------------------------------------------- extraction


def lines_of(stream):
    """Splits at LF, keeping the terminators."""
    out, start = [], 0
    while True:
        i = stream.find(b"\n", start)
        if i < 0:
            if start < len(stream):
                out.append(bytes(stream[start:]))
            return out
        out.append(bytes(stream[start:i + 1]))
        start = i + 1


def dot_body(lines, i):
    """Collects a dot-terminated body starting at lines[i]; returns (body, next index)."""
    body = bytearray()
    while i < len(lines):
        ln = lines[i]
        i += 1
        if ln.rstrip(b"\r\n") == b".":
            break
        body += ln[1:] if ln.startswith(b"..") else ln
    return bytes(body), i


def smtp_messages(client):
    msgs, lines, i = [], lines_of(client), 0
    while i < len(lines):
        if lines[i].rstrip(b"\r\n").upper() == b"DATA":
            body, i = dot_body(lines, i + 1)
            msgs.append(body)
        else:
            i += 1
    return msgs


def pop3_messages(server, client):
    msgs = []
    if not any(l.upper().startswith((b"RETR", b"TOP")) for l in lines_of(client)):
        return msgs
    lines, i = lines_of(server), 0
    while i < len(lines):
        ln = lines[i]
        i += 1
        if ln.startswith(b"+OK") and (b"octets" in ln or b"follows" in ln.lower()):
            body, i = dot_body(lines, i)
            if body.count(b"\n") > 2:
                msgs.append(body)
    return msgs


def sasl_exchanges(client, server):
    """(mech, [(dir, b64)]) from SMTP/POP3 AUTH and IMAP AUTHENTICATE, by
    pairing each client line with the server lines in order."""
    out = []
    cl, sl = lines_of(client), lines_of(server)
    si = 0
    i = 0
    while i < len(cl):
        words = cl[i].rstrip(b"\r\n").split(b" ")
        i += 1
        if words and words[0].upper() == b"AUTH" and len(words) >= 2:
            mech, rest = words[1], words[2:]
        elif len(words) >= 3 and words[1].upper() == b"AUTHENTICATE":
            mech, rest = words[2], words[3:]
        else:
            continue
        steps = [(0, rest[0])] if rest else []
        # server continuations ("334 x" / "+ x") answered by client lines
        while si < len(sl):
            s = sl[si].rstrip(b"\r\n")
            si += 1
            if s.startswith(b"334 ") or s.startswith(b"+ ") or s == b"+":
                steps.append((1, s[4:] if s.startswith(b"334") else s[2:]))
                if i < len(cl):
                    steps.append((0, cl[i].rstrip(b"\r\n")))
                    i += 1
            elif s[:1].isdigit() or b" OK" in s or b" NO" in s or b" BAD" in s or \
                    s.startswith((b"+OK", b"-ERR")):
                if not s.startswith(b"220") and not s.startswith(b"* "):
                    break
        out.append((mech.decode("latin-1"), steps))
    return out


def imap_lines(stream):
    """IMAP lines, each with the literals it announces ({n} / {n+})."""
    out, pos = [], 0
    while pos < len(stream):
        start = pos
        while True:
            lf = stream.find(b"\n", pos)
            if lf < 0:
                pos = len(stream)
                break
            line = stream[pos:lf + 1].rstrip(b"\r\n")
            pos = lf + 1
            if line.endswith(b"}") and b"{" in line:
                num = line[line.rfind(b"{") + 1:-1].rstrip(b"+")
                if num.isdigit():
                    pos += int(num)
                    continue
            break
        out.append(bytes(stream[start:pos]))
    return out


# ---------------------------------------------------------------- synthetic


def ntlm_secbuf(data, off):
    return struct.pack("<HHI", len(data), len(data), off)


def ntlm_type1():
    return b"NTLMSSP\0" + struct.pack("<II", 1, 0xE2088297) + ntlm_secbuf(b"", 0) * 2


def ntlm_type2():
    target = "EXAMPLE".encode("utf-16-le")
    info = struct.pack("<HH", 2, len(target)) + target + struct.pack("<HH", 0, 0)
    hdr_len = 48
    return (b"NTLMSSP\0" + struct.pack("<I", 2) + ntlm_secbuf(target, hdr_len) +
            struct.pack("<I", 0xE2898215) + bytes.fromhex("0123456789abcdef") + b"\0" * 8 +
            ntlm_secbuf(info, hdr_len + len(target)) + target + info)


def ntlm_type3(user="alice", domain="EXAMPLE", ws="WS01", ntresp=None):
    lm = b"\0" * 24
    nt = ntresp if ntresp is not None else bytes(range(16)) + b"\x01\x01\0\0" + b"\0" * 28
    fields = [lm, nt, domain.encode("utf-16-le"), user.encode("utf-16-le"),
              ws.encode("utf-16-le"), b""]
    off = 64
    hdr = b"NTLMSSP\0" + struct.pack("<I", 3)
    payload = b""
    for f in fields:
        hdr += ntlm_secbuf(f, off + len(payload))
        payload += f
    hdr += struct.pack("<I", 0xE2888215)
    return hdr + payload


def synthetic_sasl():
    oauth = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01" \
            b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01"
    return {
        "plain-ir": ("PLAIN", [(0, b64(b"\0alice\0secret"))]),
        "plain-authzid": ("PLAIN", [(1, b""), (0, b64(b"admin\0alice\0secret"))]),
        "plain-empty": ("PLAIN", [(0, b"=")]),
        "login": ("LOGIN", [(1, b64(b"Username:")), (0, b64(b"alice")),
                            (1, b64(b"Password:")), (0, b64(b"secret"))]),
        "login-cancel": ("LOGIN", [(1, b64(b"Username:")), (0, b"*")]),
        "cram-md5": ("CRAM-MD5", [(1, b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"),
                                  (0, b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw")]),
        "xoauth2": ("XOAUTH2", [(0, b64(b"user=someuser@example.com\x01auth=Bearer "
                                        b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"))]),
        "xoauth2-error": ("XOAUTH2", [(0, b64(b"user=a@b\x01auth=Bearer x\x01\x01")),
                                      (1, b64(b'{"status":"401","schemes":"bearer"}')),
                                      (0, b"")]),
        "oauthbearer": ("OAUTHBEARER", [(0, b64(oauth))]),
        "ntlm": ("NTLM", [(0, b64(ntlm_type1())), (1, b64(ntlm_type2())),
                          (0, b64(ntlm_type3()))]),
        "ntlm-v1": ("NTLM", [(0, b64(ntlm_type1())), (1, b64(ntlm_type2())),
                             (0, b64(ntlm_type3(ntresp=bytes(range(24)))))]),
        "unknown": ("X-UNKNOWN", [(0, b64(b"hello")), (1, b64(b"world")), (0, b"")]),
        "digest-md5": ("DIGEST-MD5", [(1, b64(b'realm="example",nonce="OA6MG9tEQGm2hh",'
                                              b'qop="auth",algorithm=md5-sess,charset=utf-8'))]),
    }


def crlf(*lines):
    return [(d, s.encode() if isinstance(s, str) else s) for d, s in lines]


def synthetic_dialogues():
    """name -> (port, greeting, [(dir, bytes)]); greeting=GREET_NONE: the
    dialogue includes the server's greeting."""
    msg = (b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
           b"Subject: =?UTF-8?B?SGVsbG8g8J+Ygw==?=\r\nMessage-ID: <1@example.test>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n..dot stuffed\r\nhi\r\n"
           b"--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n"
           b"Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC.bin\r\n\r\n"
           b"AAECAwQFBgc=\r\n--b1--\r\n")
    stuffed = msg.replace(b"\r\n.", b"\r\n..")
    d = {}
    d["smtp-plain"] = (25, GREET_NONE, crlf(
        (1, "220 mx.example.test ESMTP\r\n"), (0, "EHLO client.example.test\r\n"),
        (1, "250-mx.example.test\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-PIPELINING\r\n"
            "250-CHUNKING\r\n250 8BITMIME\r\n"),
        (0, "AUTH PLAIN " + b64(b"\0alice\0secret").decode() + "\r\n"),
        (1, "235 2.7.0 ok\r\n"), (0, "MAIL FROM:<alice@example.test>\r\n"),
        (1, "250 ok\r\n"), (0, "RCPT TO:<bob@example.test>\r\n"), (1, "250 ok\r\n"),
        (0, "DATA\r\n"), (1, "354 go\r\n"), (0, stuffed + b".\r\n"), (1, "250 queued\r\n"),
        (0, "QUIT\r\n"), (1, "221 bye\r\n")))
    d["smtp-pipelining-bdat"] = (587, GREET_SMTP, crlf(
        (0, "EHLO c\r\n"), (1, "250-mx\r\n250-CHUNKING\r\n250 PIPELINING\r\n"),
        (0, "AUTH LOGIN\r\n"), (1, "334 VXNlcm5hbWU6\r\n"), (0, "YWxpY2U=\r\n"),
        (1, "334 UGFzc3dvcmQ6\r\n"), (0, "c2VjcmV0\r\n"), (1, "535 5.7.8 no\r\n"),
        (0, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\n"
            "BDAT %d LAST\r\n" % len(msg)), (0, msg),
        (1, "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n"), (0, "RSET\r\nSTARTTLS\r\n"),
        (1, "250 ok\r\n220 go ahead\r\n"), (0, b"\x16\x03\x01\x00\x05hello")))
    d["smtp-cram"] = (2525, GREET_SMTP, crlf(
        (0, "EHLO c\r\n"), (1, "250 AUTH CRAM-MD5\r\n"), (0, "AUTH CRAM-MD5\r\n"),
        (1, "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
        (0, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"), (1, "235 ok\r\n"),
        (0, "MAIL FROM:<a@b> SIZE=10\r\n"), (1, "250 ok\r\n"), (0, "DATA\r\n"),
        (1, "503 no rcpt\r\n"), (0, "QUIT\r\n")))
    d["pop3"] = (110, GREET_NONE, crlf(
        (1, "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"), (0, "CAPA\r\n"),
        (1, "+OK\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\n.\r\n"), (0, "USER alice\r\n"),
        (1, "+OK\r\n"), (0, "PASS secret\r\n"), (1, "+OK 1 messages\r\n"), (0, "STAT\r\n"),
        (1, "+OK 1 %d\r\n" % len(msg)), (0, "RETR 1\r\n"),
        (1, b"+OK %d octets\r\n" % len(msg) + stuffed + b".\r\n"), (0, "TOP 1 0\r\n"),
        (1, b"+OK\r\n" + msg.split(b"\r\n\r\n")[0] + b"\r\n\r\n.\r\n"), (0, "QUIT\r\n"),
        (1, "+OK bye\r\n")))
    d["pop3-apop-auth"] = (110, GREET_POP3, crlf(
        (0, "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"), (1, "-ERR no\r\n"),
        (0, "AUTH PLAIN\r\n"), (1, "+ \r\n"), (0, b64(b"\0alice\0secret") + b"\r\n"),
        (1, "+OK\r\n"), (0, "LIST\r\n"), (1, "+OK\r\n1 120\r\n2 200\r\n.\r\n"),
        (0, "UIDL 1\r\n"), (1, "+OK 1 abc\r\n"), (0, "STLS\r\n"), (1, "+OK begin\r\n")))
    d["imap"] = (143, GREET_NONE, crlf(
        (1, "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready\r\n"),
        (0, "a1 CAPABILITY\r\n"),
        (1, "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN\r\na1 OK done\r\n"),
        (0, "a2 LOGIN {5}\r\n"), (1, "+ go\r\n"), (0, "alice \"sec\\\"ret\"\r\n"),
        (1, "a2 OK logged in\r\n"), (0, "a3 SELECT INBOX\r\n"),
        (1, "* 1 EXISTS\r\n* FLAGS (\\Seen \\Deleted)\r\na3 OK [READ-WRITE] done\r\n"),
        (0, "a4 UID FETCH 1 (FLAGS BODY.PEEK[])\r\n"),
        (1, b"* 1 FETCH (UID 7 FLAGS (\\Seen) BODY[] {%d}\r\n" % len(msg) + msg + b")\r\n"
            b"a4 OK done\r\n"),
        (0, b"a5 APPEND Sent (\\Seen) {%d+}\r\n" % len(msg) + msg + b"\r\n"),
        (1, "a5 OK [APPENDUID 1 8] done\r\n"),
        (0, "a6 FETCH 1 (BODYSTRUCTURE ENVELOPE)\r\n"),
        (1, "* 1 FETCH (ENVELOPE (\"date\" \"subj\" ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL "
            "NIL \"<id>\") BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
            "\"7bit\" 3 1))\r\na6 OK\r\n"),
        (0, "a7 LOGOUT\r\n"), (1, "* BYE\r\na7 OK\r\n")))
    d["imap-authenticate"] = (143, GREET_IMAP, crlf(
        (0, "A1 AUTHENTICATE PLAIN " + b64(b"\0alice\0secret").decode() + "\r\n"),
        (1, "A1 OK\r\n"), (0, "A2 AUTHENTICATE LOGIN\r\n"), (1, "+ VXNlcm5hbWU6\r\n"),
        (0, "YWxpY2U=\r\n"), (1, "+ UGFzc3dvcmQ6\r\n"), (0, "*\r\n"), (1, "A2 BAD cancelled\r\n"),
        (0, "A3 ID (\"name\" \"client\" \"version\" NIL)\r\n"), (1, "* ID NIL\r\nA3 OK\r\n"),
        (0, "A4 IDLE\r\n"), (1, "+ idling\r\n* 2 EXISTS\r\n"), (0, "DONE\r\n"),
        (1, "A4 OK\r\n"), (0, "A5 STARTTLS\r\n"), (1, "A5 OK begin TLS\r\n")))
    # what an output must not pass on as it is: terminal escapes, a bidi
    # override, markup that would close the HTML report's data blocks, a
    # file name climbing out of the extraction directory (fuzz_output.c)
    hostile = ("From: =?UTF-8?Q?=1B]0;x=07Eve?= <eve@example.test>\r\n"
               "Subject: =?UTF-8?B?" + b64("\u202egnp.exe</script><!--\x1b[2J".encode()).decode() +
               "?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
               "--b\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n"
               "--b\r\nContent-Type: application/octet-stream\r\n"
               "Content-Disposition: attachment; filename=\"../../\x1b[31m\u202ex.sh\"\r\n"
               "\r\nhi\r\n--b--\r\n").encode()
    d["smtp-hostile-text"] = (25, GREET_NONE, crlf(
        (1, "220 mx\x1b[31m</script>\u2028\x9b ESMTP\r\n"), (0, "EHLO \x1b[2J\xc3(\r\n"),
        (1, "250-mx\r\n250 AUTH PLAIN\r\n"),
        (0, "AUTH PLAIN " + b64("\0\x1b]0;\u202eroot\0pw</script>".encode()).decode() + "\r\n"),
        (1, "235 ok\r\n"), (0, "MAIL FROM:<\x07@x>\r\n"), (1, "250 ok\r\n"),
        (0, "RCPT TO:<b@\u2066d>\r\n"), (1, "250 ok\r\n"), (0, "DATA\r\n"), (1, "354 go\r\n"),
        (0, hostile + b".\r\n"), (1, "250 queued\r\n"), (0, "QUIT\r\n"), (1, "221 bye\r\n")))
    d["imap-compress"] = (143, GREET_IMAP, crlf(
        (0, "c1 COMPRESS DEFLATE\r\n"), (1, "c1 OK\r\n"),
        (0, bytes.fromhex("f2f4f2d432d0f1f4f7f3d4e7e2e5020000")),
        (1, bytes.fromhex("0a0c8070a8e0f10f0f0e7202000000ffff"))))
    return d


def synthetic_captures():
    """A few small capture files: pcapng with an unknown block, raw IP."""
    def ip4_tcp(src, dst, sport, dport, seq, flags, payload):
        tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0,
                         bytes(src), bytes(dst))
        return ip + tcp

    c, s = [192, 0, 2, 1], [192, 0, 2, 25]
    pkts = [ip4_tcp(c, s, 40000, 25, 100, 0x02, b""),
            ip4_tcp(s, c, 25, 40000, 500, 0x12, b""),
            ip4_tcp(s, c, 25, 40000, 501, 0x18, b"220 mx ESMTP\r\n"),
            ip4_tcp(c, s, 40000, 25, 101, 0x18, b"EHLO x\r\nAUTH PLAIN AGEAYg==\r\n"),
            ip4_tcp(s, c, 25, 40000, 515, 0x18, b"250 ok\r\n235 ok\r\n"),
            ip4_tcp(c, s, 40000, 25, 130, 0x11, b"")]

    def pcap(lt, frames):
        out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt)
        for i, f in enumerate(frames):
            out += struct.pack("<IIII", 1700000000, i, len(f), len(f)) + f
        return out

    def block(t, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    ng = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    ng += block(1, struct.pack("<HHI", 101, 0, 65535))
    ng += block(0x0BADBEEF, b"unknown block, skipped")
    for i, f in enumerate(pkts):
        ng += block(6, struct.pack("<IIIII", 0, 0, i, len(f), len(f)) + f)
    eth = [b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + p for p in pkts]
    def fragments(dgram, cut):
        hdr, body = dgram[:20], dgram[20:]
        out = []
        for off, part, mf in ((0, body[:cut], 0x2000), (cut, body[cut:], 0)):
            h = hdr[:2] + struct.pack(">H", 20 + len(part)) + hdr[4:6] + \
                struct.pack(">H", mf | off // 8) + hdr[8:]
            out.append(h + part)
        return out

    return {
        "synth-raw.pcap": pcap(101, pkts),
        "synth-eth.pcap": pcap(1, eth),
        "synth-unknown-block.pcapng": ng,
        "synth-truncated.pcap": pcap(1, eth)[:-7],
        "synth-frag.pcap": pcap(101, pkts[:3] + fragments(pkts[3], 16)[::-1] + pkts[4:]),
    }


# ---------------------------------------------------------------- main


def put(outdir, harness, name, data, written):
    d = os.path.join(outdir, harness)
    os.makedirs(d, exist_ok=True)
    data = bytes(data[:SEED_MAX])
    h = hashlib.sha256(data).hexdigest()
    if h in written.setdefault(harness, set()):
        return
    written[harness].add(h)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    with open(os.path.join(d, safe), "wb") as f:
        f.write(data)


def imap_tok_seeds(outdir, tag, client, server, written):
    """fuzz_imap_tok.c's format: a configuration byte (bit 0: server side,
    bits 4-7: piece size) and the bytes: each line alone, then the first
    lines of each direction together in 9-byte pieces."""
    for side, stream in ((0, client), (1, server)):
        lines = imap_lines(stream)[:IMAP_LINES]
        for k, ln in enumerate(lines):
            put(outdir, "imap_tok", "%s-%s%d" % (tag, "sline" if side else "cline", k),
                bytes([side]) + ln, written)
        put(outdir, "imap_tok", "%s-%s-pieces" % (tag, "s" if side else "c"),
            bytes([side | 3 << 4]) + b"".join(lines), written)


def cut_capture(data):
    """A capture cut at a record boundary to at most SEED_MAX bytes."""
    if len(data) <= SEED_MAX:
        return data
    if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
            if off + 16 + incl > SEED_MAX:
                break
            off += 16 + incl
        return data[:off]
    off = 0
    while off + 12 <= len(data):  # pcapng, little-endian blocks assumed
        blen = struct.unpack("<I", data[off + 4:off + 8])[0]
        if blen < 12 or off + blen > SEED_MAX:
            break
        off += blen
    return data[:off]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", default=os.path.join(TOP, "samples"))
    ap.add_argument("--out", default=os.path.join(HERE, "corpus"))
    ap.add_argument("--check", action="store_true",
                    help="write to a temporary directory and compare with --out: exit 1 "
                         "if the committed seeds are not what this script writes")
    a = ap.parse_args()
    if a.check:
        with tempfile.TemporaryDirectory() as tmp:
            rc = subprocess.run([sys.executable, os.path.abspath(__file__), "--samples",
                                 a.samples, "--out", tmp], stdout=subprocess.DEVNULL).returncode
            if rc:
                return rc
            bad = []
            for top, want in ((tmp, a.out), (a.out, tmp)):
                for d, _, names in os.walk(top):
                    for n in names:
                        rel = os.path.relpath(os.path.join(d, n), top)
                        other = os.path.join(want, rel)
                        if not os.path.exists(other):
                            bad.append("%s only in %s" % (rel, top))
                        elif top == tmp and not filecmp.cmp(os.path.join(d, n), other,
                                                            shallow=False):
                            bad.append("%s differs" % rel)
            for b in bad:
                print("make_seeds: " + b.replace(tmp, "the script's output"))
            if bad:
                print("make_seeds: %d seeds are not what the script writes; run "
                      "rm -rf tests/fuzz/corpus && tests/fuzz/make_seeds.py" % len(bad))
                return 1
            print("make_seeds: corpus reproduced")
            return 0
    written = {}
    files = sorted(glob.glob(os.path.join(a.samples, "*.pcap")) +
                   glob.glob(os.path.join(a.samples, "*.pcapng")))
    for path in files:
        base = os.path.splitext(os.path.basename(path))[0]
        with open(path, "rb") as f:
            data = f.read()
        put(a.out, "capture", os.path.basename(path), cut_capture(data), written)
        for n, fl in enumerate(flows_of(data)):
            if not fl.segments:
                continue
            port = fl.server[1]
            tag = "%s-%d" % (base, n)
            put(a.out, "dissect", tag, dissect_seed(fl.segments, port, fl.handshake), written)
            put(a.out, "dissect", tag + "-tight",
                dissect_seed(fl.segments, port, fl.handshake, tight=True), written)
            c, s = bytes(fl.streams[0]), bytes(fl.streams[1])
            for k, m in enumerate(smtp_messages(c) + pop3_messages(s, c)):
                put(a.out, "mime", "%s-msg%d.eml" % (tag, k), m, written)
            for k, (mech, steps) in enumerate(sasl_exchanges(c, s)):
                put(a.out, "sasl", "%s-auth%d-%s" % (tag, k, mech), sasl_seed(mech, steps),
                    written)
            if port in (143, 993) or s.startswith(b"* OK") or s.startswith(b"* PREAUTH"):
                imap_tok_seeds(a.out, tag, c, s, written)

    for name, data in synthetic_captures().items():
        put(a.out, "capture", name, data, written)
    for name, (port, greet, segs) in synthetic_dialogues().items():
        put(a.out, "dissect", "synth-" + name, dissect_seed(segs, port, True, greet), written)
        put(a.out, "dissect", "synth-%s-tight" % name,
            dissect_seed(segs, port, True, greet, tight=True), written)
        # the same bytes in 1..7-byte segments, and mid-stream
        small = []
        for d, b in segs:
            i = 0
            while i < len(b):
                k = 1 + (i * 7 + len(small)) % 7
                small.append((d, b[i:i + k]))
                i += k
        put(a.out, "dissect", "synth-%s-small" % name, dissect_seed(small, port, True, greet),
            written)
        put(a.out, "dissect", "synth-%s-midstream" % name,
            dissect_seed(segs, port, False, greet), written)
        c = b"".join(b for d, b in segs if d == 0)
        s = b"".join(b for d, b in segs if d == 1)
        for k, m in enumerate(smtp_messages(c) + pop3_messages(s, c)):
            put(a.out, "mime", "synth-%s-msg%d.eml" % (name, k), m, written)
        for k, (mech, steps) in enumerate(sasl_exchanges(c, s)):
            put(a.out, "sasl", "synth-%s-auth%d-%s" % (name, k, mech), sasl_seed(mech, steps),
                written)
        if port == 143:
            imap_tok_seeds(a.out, "synth-" + name, c, s, written)
    put(a.out, "dissect", "synth-late-conflict", late_conflict_seed(), written)
    for name, (mech, steps) in synthetic_sasl().items():
        put(a.out, "sasl", "synth-" + name, sasl_seed(mech, steps), written)
    put(a.out, "sasl", "synth-apop",
        bytes([SASL_MECHS.index("APOP")]) + b"<1896.697170952@dbc.mtview.ca.us>\n"
        b"c4c9334bac560ecc979e58001b3e22fb", written)
    for path in sorted(glob.glob(os.path.join(TOP, "tests", "unit", "data", "mime", "*.eml"))):
        with open(path, "rb") as f:
            put(a.out, "mime", "unit-" + os.path.basename(path), f.read(), written)
    # hand-written seeds, kept as they are (tests/fuzz/hand/<harness>/)
    for path in sorted(glob.glob(os.path.join(HERE, "hand", "*", "*"))):
        with open(path, "rb") as f:
            put(a.out, os.path.basename(os.path.dirname(path)), os.path.basename(path), f.read(),
                written)
    for h in sorted(written):
        print("%-9s %d seeds" % (h, len(written[h])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
