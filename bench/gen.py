#!/usr/bin/env python3
"""Make large benchmark captures from the project's recorded samples.

Each sample capture (samples/*.pcap) is a template: all its TCP packets, in
their recorded order.  The generator replicates templates many times, each
copy ("instance") with its own client addresses (10.100.0.0 and up, or
fd99::1:x:y for IPv6) and client ports, its sequence numbers shifted by a
random offset per direction, and copies interleaved in time: packets are
taken round-robin from many concurrently open instances (a session of N
packets sends ceil(N/64) per turn, so that large transfers go in bursts and
the number of large messages in flight stays the same however long the
capture is).  Segments larger
than the flow's MSS (the samples were taken with offloads that merge
segments) are cut to wire size, and IP and TCP checksums are computed for
every packet written, so checksum-checking tools (libnids) accept them.

The ground truth is what the golden tests (tests/golden/<sample>/
expected.jsonl, checked by hand) say each template holds, times the number
of instances written: it goes to a JSON file next to the capture.

Profiles:
  mixed  SMTP, POP3 and IMAP sessions in equal numbers, with a few large
         messages (smtp-large) among them, up to --size bytes
  large  few sessions carrying multi-MB attachments (smtp-large.pcap, or a
         synthesized SMTP session with a base64 attachment), up to --size
  short  --sessions short sessions (default 100,000): logins and small
         messages, many open at once

Same arguments and same samples give the same bytes (seeded).
Python 3 standard library only.
"""

import argparse
import base64
import json
import os
import random
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113

TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# 2026-01-01T00:00:00Z: the generated captures start here, whatever the samples' dates.
START_TIME_US = 1767225600 * 1000000

# Ethernet addresses of the generated frames (locally administered).
MAC_CLIENT = bytes.fromhex("020000000002")
MAC_SERVER = bytes.fromhex("020000000001")


def parse_size(text):
    """'250M', '1G', '500k', '123' -> bytes (powers of 1000: 1G = 10^9)."""
    text = text.strip().upper().rstrip("B")
    mult = 1
    if text and text[-1] in "KMG":
        mult = {"K": 10**3, "M": 10**6, "G": 10**9}[text[-1]]
        text = text[:-1]
    return int(float(text) * mult)


def size_label(n):
    for unit, div in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= div and n % div == 0:
            return "%d%s" % (n // div, unit)
    return str(n)


def csum_words(data):
    """Sum of the 16-bit big-endian words of data (odd length padded), unfolded."""
    if len(data) & 1:
        data += b"\0"
    return sum(struct.unpack("!%dH" % (len(data) // 2), data))


def fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


# ---------------------------------------------------------------- templates


class TPkt:
    """One TCP segment of a template, with what does not change between
    instances precomputed."""

    __slots__ = ("flow", "c2s", "v6", "seq", "ack", "offflags", "win", "urp",
                 "tail", "ip_a", "ip_b", "tcp_base", "ip_base", "sack",
                 "opts_len")


class Flow:
    __slots__ = ("cli_ip", "cli_port", "srv_ip", "srv_port", "v6", "cli_idx")


class Template:
    def __init__(self, name):
        self.name = name
        self.pkts = []
        self.flows = []
        self.client_ips = []  # distinct original client addresses, in order
        self.v6 = False
        self.truth = None  # {"sessions": {...}, "messages": n, ...}
        self.bytes_out = 0  # bytes one instance adds to the capture
        self.kind = ""  # smtp / pop3 / imap
        self.burst = 1  # packets an instance sends per round-robin turn


def read_pcap(path):
    """Yield (linktype, frame bytes) of a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: too short for a pcap file" % path)
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError("%s: not a classic pcap file (pcapng is not supported)" % path)
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    hdr = struct.Struct(endian + "IIII")
    while off + 16 <= len(data):
        _, _, incl, _ = hdr.unpack_from(data, off)
        off += 16
        yield linktype, data[off:off + incl]
        off += incl


def ip_layer(linktype, frame):
    """Return (ethertype-like version, ip bytes) or None."""
    if linktype == LINKTYPE_ETHERNET:
        off, etype = 12, None
        while off + 2 <= len(frame):
            etype = struct.unpack_from("!H", frame, off)[0]
            if etype in (0x8100, 0x88A8):
                off += 4
                continue
            break
        return etype, frame[off + 2:]
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.unpack_from("!H", frame, 14)[0], frame[16:]
    if linktype in (LINKTYPE_RAW, 12, 14):
        v = frame[0] >> 4 if frame else 0
        return {4: 0x0800, 6: 0x86DD}.get(v), frame
    return None, b""


def parse_tcp_ip(linktype, frame):
    """-> dict with the IP and TCP fields of a TCP packet, or None."""
    etype, ip = ip_layer(linktype, frame)
    if etype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        tos, totlen, ipid, frag, ttl, proto = struct.unpack_from("!xBHHHBB", ip, 0)
        if proto != 6 or frag & 0x3FFF:  # not TCP, or a fragment
            return None
        src, dst = ip[12:16], ip[16:20]
        seg = ip[ihl:totlen]
        v6, extra = False, (tos, ipid, frag & 0x4000, ttl)
    elif etype == 0x86DD and len(ip) >= 40:
        vtf, plen, nxt, hlim = struct.unpack_from("!IHBB", ip, 0)
        if nxt != 6:  # extension headers: not in the samples, not handled
            return None
        src, dst = ip[8:24], ip[24:40]
        seg = ip[40:40 + plen]
        v6, extra = True, (vtf & 0x0FFFFFFF, hlim)
    else:
        return None
    if len(seg) < 20:
        return None
    sport, dport, seq, ack, offflags, win, _, urp = struct.unpack_from("!HHIIHHHH", seg, 0)
    thl = (offflags >> 12) * 4
    return {"v6": v6, "src": src, "dst": dst, "sport": sport, "dport": dport,
            "seq": seq, "ack": ack, "offflags": offflags, "win": win, "urp": urp,
            "opts": seg[20:thl], "payload": seg[thl:], "extra": extra}


def tcp_options(opts):
    """-> list of (kind, data) of TCP options."""
    out, i = [], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        ln = opts[i + 1]
        out.append((kind, i, opts[i + 2:i + ln]))
        i += ln
    return out


def mss_of(opts):
    for kind, _, data in tcp_options(opts):
        if kind == 2 and len(data) == 2:
            return struct.unpack("!H", data)[0]
    return None


def build_template(name, raw_pkts):
    """raw_pkts: list of parse_tcp_ip dicts in capture order -> Template."""
    t = Template(name)
    flows = {}
    mss = {}
    # First pass: flows, client sides (SYN sender; else the higher port).
    for p in raw_pkts:
        a, b = (p["src"], p["sport"]), (p["dst"], p["dport"])
        key = (a, b) if a < b else (b, a)
        if key not in flows:
            f = Flow()
            f.v6 = p["v6"]
            syn_only = p["offflags"] & (TH_SYN | TH_ACK) == TH_SYN
            if syn_only or (not p["offflags"] & TH_SYN and p["sport"] > p["dport"]):
                f.cli_ip, f.cli_port, f.srv_ip, f.srv_port = p["src"], p["sport"], p["dst"], p["dport"]
            else:
                f.cli_ip, f.cli_port, f.srv_ip, f.srv_port = p["dst"], p["dport"], p["src"], p["sport"]
            if f.cli_ip not in t.client_ips:
                t.client_ips.append(f.cli_ip)
            f.cli_idx = t.client_ips.index(f.cli_ip)
            flows[key] = len(t.flows)
            t.flows.append(f)
        fi = flows[key]
        if p["offflags"] & TH_SYN:
            m = mss_of(p["opts"])
            if m:
                mss[(fi, p["src"] == t.flows[fi].cli_ip and p["sport"] == t.flows[fi].cli_port)] = m
    t.v6 = any(f.v6 for f in t.flows)
    # Second pass: segments, cut to the MSS the receiver announced.
    for p in raw_pkts:
        a, b = (p["src"], p["sport"]), (p["dst"], p["dport"])
        fi = flows[(a, b) if a < b else (b, a)]
        f = t.flows[fi]
        c2s = (p["src"], p["sport"]) == (f.cli_ip, f.cli_port)
        # The receiver's MSS bounds the sender's segments (options of data
        # segments, e.g. timestamps, come off it).
        limit = mss.get((fi, not c2s), 1460) - len(p["opts"])
        payload = p["payload"]
        if len(payload) <= limit:
            pieces = [payload]
        else:
            pieces = [payload[i:i + limit] for i in range(0, len(payload), limit)]
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            offflags = p["offflags"]
            if not last:
                offflags &= ~(TH_FIN | TH_PSH)
            q = dict(p)
            q["payload"] = piece
            q["offflags"] = offflags
            q["seq"] = (p["seq"] + n * limit) & 0xFFFFFFFF
            if not p["v6"] and n:
                tos, ipid, df, ttl = p["extra"]
                q["extra"] = (tos, (ipid + n) & 0xFFFF, df, ttl)
            t.pkts.append(make_tpkt(q, fi, c2s))
    t.bytes_out = sum(16 + 14 + (40 if tp.v6 else 20) + 20 + len(tp.tail) for tp in t.pkts)
    return t


def make_tpkt(p, fi, c2s):
    tp = TPkt()
    tp.flow, tp.c2s, tp.v6 = fi, c2s, p["v6"]
    tp.seq, tp.ack, tp.offflags, tp.win, tp.urp = p["seq"], p["ack"], p["offflags"], p["win"], p["urp"]
    opts, payload = p["opts"], p["payload"]
    tp.opts_len = len(opts)
    tp.tail = opts + payload
    tcp_len = 20 + len(opts) + len(payload)
    # SACK blocks carry sequence numbers: they are rewritten per instance.
    tp.sack = [(off, len(data) // 8) for kind, off, data in tcp_options(opts) if kind == 5]
    # TCP checksum: everything but addresses, ports, seq and ack, which
    # differ per instance (pseudo-header: protocol and TCP length).
    tp.tcp_base = 6 + tcp_len + p["offflags"] + p["win"] + p["urp"] + csum_words(opts) + csum_words(payload)
    if p["v6"]:
        vtf, hlim = p["extra"]
        tp.ip_a, tp.ip_b = (6 << 28) | vtf, hlim
        tp.ip_base = 0
    else:
        tos, ipid, df, ttl = p["extra"]
        totlen = 20 + tcp_len
        tp.ip_a = (tos, totlen, ipid, df, ttl)
        tp.ip_b = None
        tp.ip_base = (0x4500 | tos) + totlen + ipid + df + ((ttl << 8) | 6)
    return tp


def load_truth(name):
    """Counts that the golden test of sample NAME pins, or None."""
    path = os.path.join(ROOT, "tests", "golden", name, "expected.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if '"summary"' in line:
            s = json.loads(line)
            if s.get("type") == "summary":
                return {"sessions": s["sessions"], "messages": s["messages"]["total"],
                        "credentials": s["credentials"]["total"],
                        "attachments": s.get("attachments", 0)}
    return None


def load_sample(path, notes):
    name = os.path.splitext(os.path.basename(path))[0]
    raw = []
    try:
        for linktype, frame in read_pcap(path):
            p = parse_tcp_ip(linktype, frame)
            if p is not None:
                raw.append(p)
    except (ValueError, struct.error) as e:
        notes.append("skipped %s: %s" % (name, e))
        return None
    if not raw:
        notes.append("skipped %s: no TCP packets" % name)
        return None
    truth = load_truth(name)
    if truth is None:
        notes.append("skipped %s: no golden test (tests/golden/%s) to take its counts from" % (name, name))
        return None
    t = build_template(name, raw)
    t.truth = truth
    t.kind = name.split("-")[0]
    return t


# ------------------------------------------------- synthesized large session


def synth_large_smtp(rng, attach_bytes):
    """An SMTP session (AUTH PLAIN, one message with a base64 attachment of
    attach_bytes random bytes), as a Template, for when samples/smtp-large.pcap
    is missing."""
    blob = bytes(rng.getrandbits(8) for _ in range(4096)) * (attach_bytes // 4096 + 1)
    blob = blob[:attach_bytes]
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    body = (b"From: Alice Example <alice@example.test>\r\n"
            b"To: Bob Builder <bob@example.test>\r\n"
            b"Subject: Large attachment (synthesized)\r\n"
            b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
            b"Message-ID: <synth-large@example.test>\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
            b"--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n"
            + b64 + b"--b1--\r\n.\r\n")
    auth = base64.b64encode(b"\0alice@example.test\0Wonderland-2024")
    dialogue = [
        (False, b"220 mail.example.test ESMTP\r\n"),
        (True, b"EHLO client.example.test\r\n"),
        (False, b"250-mail.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
        (True, b"AUTH PLAIN " + auth + b"\r\n"),
        (False, b"235 2.7.0 Authentication successful\r\n"),
        (True, b"MAIL FROM:<alice@example.test>\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"RCPT TO:<bob@example.test>\r\n"),
        (False, b"250 OK\r\n"),
        (True, b"DATA\r\n"),
        (False, b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        (True, body),
        (False, b"250 OK: queued\r\n"),
        (True, b"QUIT\r\n"),
        (False, b"221 Bye\r\n"),
    ]
    cli, srv = bytes([10, 99, 0, 2]), bytes([10, 99, 0, 1])
    cport, sport = 40000, 25
    seq = {True: 1000, False: 5000}
    pkts = []

    def seg(c2s, flags, payload=b"", opts=b""):
        src, dst = (cli, srv) if c2s else (srv, cli)
        sp, dp = (cport, sport) if c2s else (sport, cport)
        pkts.append({"v6": False, "src": src, "dst": dst, "sport": sp, "dport": dp,
                     "seq": seq[c2s], "ack": seq[not c2s] if flags & TH_ACK else 0,
                     "offflags": ((20 + len(opts)) // 4 << 12) | flags, "win": 64240,
                     "urp": 0, "opts": opts, "payload": payload,
                     "extra": (0, len(pkts) & 0xFFFF, 0x4000, 64)})
        seq[c2s] = (seq[c2s] + len(payload) + (1 if flags & (TH_SYN | TH_FIN) else 0)) & 0xFFFFFFFF

    mss = struct.pack("!BBH", 2, 4, 1460)
    seg(True, TH_SYN, opts=mss)
    seg(False, TH_SYN | TH_ACK, opts=mss)
    seg(True, TH_ACK)
    for c2s, data in dialogue:
        for i in range(0, len(data), 1460):
            seg(c2s, TH_ACK | TH_PSH, data[i:i + 1460])
            if (i // 1460) % 2 == 1 or i + 1460 >= len(data):
                seg(not c2s, TH_ACK)  # delayed ACK: one per two segments
    seg(True, TH_FIN | TH_ACK)
    seg(False, TH_FIN | TH_ACK)
    seg(True, TH_ACK)
    t = build_template("synth-smtp-large", pkts)
    t.kind = "smtp"
    t.truth = {"sessions": {"total": 1, "smtp": 1, "pop3": 0, "imap": 0, "tls": 0, "tcp": 0},
               "messages": 1, "credentials": 1, "attachments": 1}
    return t


# ------------------------------------------------------------------ writer


class Writer:
    """Writes instances of templates, interleaved round-robin."""

    def __init__(self, out, rng):
        self.out = out
        self.rng = rng
        self.buf = []
        self.buffered = 0
        self.bytes = 24
        self.packets = 0
        self.instances = 0
        self.next_client = 0
        self.committed = 24  # bytes written plus those open instances will write
        self.t_us = START_TIME_US
        # Inter-packet gaps (1..20 us) from a seeded table: cheap per packet.
        self.gaps = [rng.randint(1, 20) for _ in range(4096)]
        self.gi = 0
        self.hdr = struct.Struct("<IIII")
        self.ip4tcp = struct.Struct("!BBHHHBBH4s4sHHIIHHHH")
        self.ip6tcp = struct.Struct("!IHBB16s16sHHIIHHHH")
        self.eth4 = (MAC_SERVER + MAC_CLIENT + b"\x08\x00", MAC_CLIENT + MAC_SERVER + b"\x08\x00")
        self.eth6 = (MAC_SERVER + MAC_CLIENT + b"\x86\xdd", MAC_CLIENT + MAC_SERVER + b"\x86\xdd")
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))

    def new_client_ip(self, v6):
        m = self.next_client
        self.next_client += 1
        if v6:
            return b"\xfd\x99" + bytes(8) + struct.pack("!HHH", 1, m >> 16, m & 0xFFFF)
        return bytes([10, 100 + (m >> 16), (m >> 8) & 0xFF, m & 0xFF])

    def start(self, t):
        """-> the state of a new instance of template t."""
        rng = self.rng
        ips = [self.new_client_ip(len(ip) == 16) for ip in t.client_ips]
        flows = []
        for f in t.flows:
            cli = ips[f.cli_idx]
            cport = rng.randint(1024, 65535)
            oc, os_ = rng.getrandbits(32), rng.getrandbits(32)
            k = csum_words(cli + f.srv_ip) + cport + f.srv_port
            flows.append((cli, cport, f.srv_ip, f.srv_port, oc, os_, k))
        self.instances += 1
        self.committed += t.bytes_out
        return [t, 0, flows]

    def emit(self, inst):
        """Writes the next packet of inst; -> False when inst is done."""
        t, i, flows = inst
        tp = t.pkts[i]
        cli, cport, srv, sport, oc, os_, k = flows[tp.flow]
        if tp.c2s:
            src, dst, sp, dp = cli, srv, cport, sport
            seq = (tp.seq + oc) & 0xFFFFFFFF
            ack = (tp.ack + os_) & 0xFFFFFFFF if tp.offflags & TH_ACK else tp.ack
            eth = 1
        else:
            src, dst, sp, dp = srv, cli, sport, cport
            seq = (tp.seq + os_) & 0xFFFFFFFF
            ack = (tp.ack + oc) & 0xFFFFFFFF if tp.offflags & TH_ACK else tp.ack
            eth = 0
        tail = tp.tail
        s = tp.tcp_base + k + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
        if tp.sack:
            tail, s = self.rewrite_sack(tp, os_ if tp.c2s else oc, s)
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        tcsum = ~s & 0xFFFF
        if tp.v6:
            hdr = self.ip6tcp.pack(tp.ip_a, 20 + len(tail), 6, tp.ip_b, src, dst,
                                   sp, dp, seq, ack, tp.offflags, tp.win, tcsum, tp.urp)
            ethh = self.eth6[eth]
        else:
            tos, totlen, ipid, df, ttl = tp.ip_a
            c = fold(tp.ip_base + k - cport - sport)
            hdr = self.ip4tcp.pack(0x45, tos, totlen, ipid, df, ttl, 6, ~c & 0xFFFF, src, dst,
                                   sp, dp, seq, ack, tp.offflags, tp.win, tcsum, tp.urp)
            ethh = self.eth4[eth]
        caplen = 14 + len(hdr) + len(tail)
        self.t_us += self.gaps[self.gi]
        self.gi = (self.gi + 1) & 4095
        sec, usec = divmod(self.t_us, 1000000)
        rec = self.hdr.pack(sec, usec, caplen, caplen)
        self.buf.append(rec + ethh + hdr + tail)
        n = 16 + caplen
        self.bytes += n
        self.buffered += n
        self.packets += 1
        if self.buffered > (4 << 20):
            self.flush()
        inst[1] = i + 1
        return i + 1 < len(t.pkts)

    @staticmethod
    def rewrite_sack(tp, off, s):
        """SACK edges are the peer's sequence numbers: shift them by its offset."""
        opts = bytearray(tp.tail[:tp.opts_len])
        s -= csum_words(bytes(opts))
        for o, n in tp.sack:
            for j in range(2 * n):
                p = o + 2 + 4 * j
                v = (struct.unpack_from("!I", opts, p)[0] + off) & 0xFFFFFFFF
                struct.pack_into("!I", opts, p, v)
        s += csum_words(bytes(opts))
        return bytes(opts) + tp.tail[tp.opts_len:], s

    def flush(self):
        self.out.write(b"".join(self.buf))
        self.buf = []
        self.buffered = 0

    def run(self, pick, concurrency, more):
        """Round-robin over up to `concurrency` open instances; pick() chooses
        the template of a new instance, more() says whether to start one."""
        from collections import deque
        active = deque()
        counts = {}
        while len(active) < concurrency and more():
            t = pick()
            counts[t.name] = counts.get(t.name, 0) + 1
            active.append(self.start(t))
        emit = self.emit
        while active:
            inst = active.popleft()
            alive = True
            for _ in range(inst[0].burst):
                alive = emit(inst)
                if not alive:
                    break
            if alive:
                active.append(inst)
            elif more():
                t = pick()
                counts[t.name] = counts.get(t.name, 0) + 1
                active.append(self.start(t))
        self.flush()
        return counts


# -------------------------------------------------------------------- main


def choose_templates(profile, templates, rng, args, notes):
    """-> (list of (template, weight), concurrency)."""
    large = [t for t in templates if t.name.endswith("-large")]
    small = [t for t in templates if not t.name.endswith("-large")]
    if profile in ("large", "mixed") and not large:
        notes.append("%s: synthesized an SMTP session with a %d-byte base64 attachment"
                     % ("--synth-large" if args.synth_large else "no samples/smtp-large.pcap",
                        args.attach))
        large = [synth_large_smtp(rng, args.attach)]
    if profile == "large":
        return [(t, 1.0) for t in large], args.concurrency or 4
    if profile == "short":
        # Short sessions: the smallest templates of each protocol, no bulk.
        cand = sorted((t for t in small if len(t.pkts) <= 40), key=lambda t: (t.kind, t.name))
        if not cand:
            cand = sorted(small, key=lambda t: len(t.pkts))[:6]
        kinds = sorted({t.kind for t in cand})
        return [(t, 1.0 / sum(1 for u in cand if u.kind == t.kind) / len(kinds)) for t in cand], \
            args.concurrency or 1000
    # mixed: each protocol a third of the sessions, templates of a protocol
    # equally likely; large messages make up --large-share of the sessions.
    kinds = sorted({t.kind for t in small})
    out = []
    for t in sorted(small, key=lambda t: t.name):
        n = sum(1 for u in small if u.kind == t.kind)
        out.append((t, (1.0 - args.large_share) / len(kinds) / n))
    for t in large:
        out.append((t, args.large_share / len(large)))
    return out, args.concurrency or 256


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("profile", choices=("mixed", "large", "short"))
    ap.add_argument("--size", default="250M",
                    help="mixed, large: stop starting sessions at this size (K/M/G = 10^3/6/9; default 250M)")
    ap.add_argument("--sessions", type=int, default=100000,
                    help="short: number of template instances (default 100000)")
    ap.add_argument("--out", default=os.path.join(HERE, "data"),
                    help="output directory (default bench/data)")
    ap.add_argument("--name", help="file name without extension (default PROFILE-SIZE)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--samples", default=os.path.join(ROOT, "samples"), help="sample directory")
    ap.add_argument("--concurrency", type=int, default=0,
                    help="sessions open at once (default: mixed 256, large 4, short 1000)")
    ap.add_argument("--large-share", type=float, default=0.002,
                    help="mixed: share of sessions that are large messages (default 0.002)")
    ap.add_argument("--attach", type=int, default=4 << 20,
                    help="size of a synthesized attachment when smtp-large.pcap is missing")
    ap.add_argument("--synth-large", action="store_true",
                    help="use a synthesized large SMTP session even if smtp-large.pcap exists")
    ap.add_argument("--burst-len", type=int, default=64,
                    help="a session of N packets sends ceil(N/BURST_LEN) per turn, so that every "
                         "session stays open for about the same number of turns (default 64)")
    ap.add_argument("--force", action="store_true", help="rewrite the capture even if it exists")
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    notes = []
    target = parse_size(args.size)
    name = args.name or ("%s-%s" % (args.profile, size_label(target) if args.profile != "short"
                                    else str(args.sessions)))
    os.makedirs(args.out, exist_ok=True)
    pcap_path = os.path.join(args.out, name + ".pcap")
    json_path = os.path.join(args.out, name + ".json")

    templates = []
    for fn in sorted(os.listdir(args.samples)):
        if not fn.endswith(".pcap"):
            continue
        if args.synth_large and fn.endswith("-large.pcap"):
            continue
        t = load_sample(os.path.join(args.samples, fn), notes)
        if t is not None:
            templates.append(t)
    if not templates and args.profile != "large":
        sys.exit("gen.py: no usable sample captures in %s" % args.samples)
    weighted, concurrency = choose_templates(args.profile, templates, rng, args, notes)
    params = {"profile": args.profile, "seed": args.seed, "size": target if args.profile != "short" else None,
              "sessions": args.sessions if args.profile == "short" else None,
              "concurrency": concurrency, "burst_len": args.burst_len, "large_share": args.large_share if args.profile == "mixed" else None,
              "templates": sorted(t.name for t, _ in weighted)}
    if not args.force and os.path.exists(pcap_path) and os.path.exists(json_path):
        with open(json_path, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("params") == params and old.get("bytes") == os.path.getsize(pcap_path):
            print("%s: up to date" % pcap_path, file=sys.stderr)
            return 0

    tlist = [t for t, _ in weighted]
    for t in tlist:
        t.burst = max(1, -(-len(t.pkts) // args.burst_len))
    cum, acc = [], 0.0
    for _, w in weighted:
        acc += w
        cum.append(acc)
    import bisect

    def pick():
        return tlist[min(bisect.bisect_right(cum, rng.random() * acc), len(tlist) - 1)]

    t0 = time.monotonic()
    tmp = pcap_path + ".part"
    with open(tmp, "wb") as out:
        w = Writer(out, rng)
        if args.profile == "short":
            def more():
                return w.instances < args.sessions
        else:
            # Stop starting sessions once the bytes written plus those the
            # open sessions still have to write reach the target.
            def more():
                return w.committed < target
        counts = w.run(pick, concurrency, more)
    os.replace(tmp, pcap_path)
    elapsed = time.monotonic() - t0

    by_name = {t.name: t for t in tlist}
    truth = {"sessions": {}, "messages": 0, "credentials": 0, "attachments": 0}
    for n, c in counts.items():
        tt = by_name[n].truth
        for k, v in tt["sessions"].items():
            truth["sessions"][k] = truth["sessions"].get(k, 0) + v * c
        for k in ("messages", "credentials", "attachments"):
            truth[k] += tt[k] * c
    result = {
        "file": os.path.basename(pcap_path),
        "params": params,
        "bytes": w.bytes,
        "packets": w.packets,
        "instances": w.instances,
        "sessions": truth["sessions"],
        "messages": truth["messages"],
        "credentials": truth["credentials"],
        "attachments": truth["attachments"],
        "per_template": {n: {"instances": c, **by_name[n].truth} for n, c in sorted(counts.items())},
        "notes": notes,
        "truth_source": "tests/golden/<sample>/expected.jsonl summary of each sample, times its instances",
    }
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")
    for n in notes:
        print("gen.py: note: %s" % n, file=sys.stderr)
    print("%s: %d bytes, %d packets, %d sessions, %d messages, %d credentials (%.1f s)"
          % (pcap_path, w.bytes, w.packets, truth["sessions"].get("total", 0), truth["messages"],
             truth["credentials"], elapsed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
