#!/usr/bin/env python3
"""Writes the hostile captures of tests/hostile/ (README.md says why each exists).

Each capture holds one hostile session and, in the middle of it, a normal
SMTP session (the records of samples/smtp-auth-plain.pcap, copied as they
are with new timestamps), so a test can check that the hostile traffic
leaves the normal session's report unchanged.  The captures are large (up
to ~100 MB) and are written into a temporary directory, never committed.
Records are written with struct.pack into a buffered file, payloads sliced
from one preallocated buffer.

usage: make_hostile.py OUTDIR [CASE ...]      (no CASE: every one; -l lists them)

Standard library only.
"""
import base64
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
NORMAL_SAMPLE = os.path.join(TOP, "samples", "smtp-auth-plain.pcap")

MSS = 1460
ETH_IP4 = b"\x02\x00\x00\x00\x66\x02" + b"\x02\x00\x00\x00\x66\x01" + b"\x08\x00"
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# ---------------------------------------------------------------- pcap writing


class Pcap:
    """A classic pcap (Ethernet, microseconds) written record by record."""

    def __init__(self, path, linktype=1):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        self.ts = 1700000000 * 1000000
        self.ident = 0

    def frame(self, frame):
        self.ts += 10
        n = len(frame)
        self.f.write(struct.pack("<IIII", self.ts // 1000000, self.ts % 1000000, n, n))
        self.f.write(frame)

    def tcp(self, src, dst, sport, dport, seq, ack, flags, payload=b""):
        """One Ethernet/IPv4/TCP frame; payload may be a memoryview slice."""
        self.ident = (self.ident + 1) & 0xFFFF
        n = len(payload)
        hdr = ETH_IP4 + struct.pack(
            ">BBHHHBBH4s4sHHIIBBHHH", 0x45, 0, 40 + n, self.ident, 0x4000, 64, 6, 0, src, dst,
            sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
        self.ts += 10
        self.f.write(struct.pack("<IIII", self.ts // 1000000, self.ts % 1000000,
                                 len(hdr) + n, len(hdr) + n))
        self.f.write(hdr)
        self.f.write(payload)

    def close(self):
        self.f.close()


def ip4(s):
    return bytes(int(x) for x in s.split("."))


class Session:
    """One TCP connection written into a Pcap: handshake, data both ways
    (cut into MSS segments, the peer ACKing every 64 KiB), FIN."""

    def __init__(self, pcap, client, server, cport, sport):
        self.p = pcap
        self.ep = [(ip4(client), cport), (ip4(server), sport)]
        self.seq = [0x10000000, 0x70000000]

    def _pkt(self, d, flags, payload=b"", seq=None):
        (src, sp), (dst, dp) = self.ep[d], self.ep[1 - d]
        self.p.tcp(src, dst, sp, dp, self.seq[d] if seq is None else seq, self.seq[1 - d],
                   flags, payload)

    def handshake(self):
        self._pkt(0, SYN)
        self.seq[0] += 1
        self._pkt(1, SYN | ACK)
        self.seq[1] += 1
        self._pkt(0, ACK)
        return self

    def send(self, d, data):
        mv = memoryview(data)
        since_ack = 0
        for off in range(0, len(mv), MSS):
            seg = mv[off:off + MSS]
            self._pkt(d, PSH | ACK, seg)
            self.seq[d] += len(seg)
            since_ack += len(seg)
            if since_ack >= 65536:
                self._pkt(1 - d, ACK)
                since_ack = 0
        return self

    def c(self, data):
        return self.send(0, data)

    def s(self, data):
        return self.send(1, data)

    def raw(self, d, seq, data):
        """A segment at an arbitrary sequence number (retransmissions)."""
        self._pkt(d, PSH | ACK, data, seq=seq)

    def close(self):
        self._pkt(0, FIN | ACK)
        self.seq[0] += 1
        self._pkt(1, FIN | ACK)
        self.seq[1] += 1
        self._pkt(0, ACK)


def read_pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\xd4\xc3\xb2\xa1" or struct.unpack("<I", data[20:24])[0] != 1:
        raise SystemExit("%s: expected a little-endian Ethernet pcap" % path)
    off, frames = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


class Normal:
    """The normal session, written once into a capture at a chosen point."""

    def __init__(self, pcap):
        self.p = pcap
        self.frames = read_pcap_frames(NORMAL_SAMPLE)

    def __call__(self):
        for fr in self.frames:
            self.p.frame(fr)


# ---------------------------------------------------------------- the cases
# Each case writes its hostile session into pcap and calls normal() once.

GREETING = b"220 mx.hostile.test ESMTP\r\n"


def smtp_start(p, client="10.66.0.2", cport=50000):
    s = Session(p, client, "10.66.0.1", cport, 25).handshake()
    s.s(GREETING).c(b"EHLO hostile.test\r\n").s(b"250-mx.hostile.test\r\n250 PIPELINING\r\n")
    return s


def case_imap_literal_4g(p, normal):
    """IMAP APPEND declaring a 4 GiB literal, followed by 80 MiB of it."""
    s = Session(p, "10.66.0.2", "10.66.0.1", 50001, 143).handshake()
    s.s(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n")
    s.c(b"a1 LOGIN alice secret\r\n").s(b"a1 OK done\r\n")
    s.c(b"a2 APPEND INBOX {4294967296}\r\n").s(b"+ go ahead\r\n")
    chunk = b"Subject: big\r\n\r\n" + b"x" * (1 << 20)
    half = 40
    for i in range(2 * half):
        if i == half:
            normal()
        s.c(chunk[:1 << 20])
    s.close()


def case_line_100mb(p, normal):
    """100 MB of command bytes without a single LF."""
    s = smtp_start(p)
    big = b"NOOP " + b"A" * (1 << 20)
    for i in range(100):
        if i == 50:
            normal()
        s.c(big[:1 << 20] if i else big)
    s.close()


def case_rcpt_100k(p, normal):
    """One transaction with 100,000 RCPT TO (pipelined 100 at a time), then a message."""
    s = smtp_start(p)
    s.c(b"MAIL FROM:<spam@hostile.test>\r\n").s(b"250 OK\r\n")
    replies = b"250 OK\r\n" * 100
    for b in range(1000):
        if b == 500:
            normal()
        s.c(b"".join(b"RCPT TO:<u%d@victim.test>\r\n" % (b * 100 + i) for i in range(100)))
        s.s(replies)
    s.c(b"DATA\r\n").s(b"354 go\r\n")
    s.c(b"Subject: hi\r\n\r\nhello\r\n.\r\n").s(b"250 queued\r\n")
    s.c(b"QUIT\r\n").s(b"221 bye\r\n")
    s.close()


def send_message(s, body):
    s.c(b"MAIL FROM:<a@hostile.test>\r\n").s(b"250 OK\r\n")
    s.c(b"RCPT TO:<b@victim.test>\r\n").s(b"250 OK\r\n")
    s.c(b"DATA\r\n").s(b"354 go\r\n")
    s.c(body + b".\r\n").s(b"250 queued\r\n")
    s.c(b"QUIT\r\n").s(b"221 bye\r\n")
    s.close()


def case_mime_depth_10000(p, normal):
    """A message of multiparts nested 10,000 deep."""
    depth = 10000
    head = [b"From: a@hostile.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        head.append(b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (i, i))
    head.append(b"Content-Type: text/plain\r\n\r\ninnermost\r\n")
    tail = [b"--b%d--\r\n" % i for i in reversed(range(depth))]
    body = b"".join(head + tail)
    normal()
    s = smtp_start(p)
    send_message(s, body)


def case_ewords_unclosed(p, normal):
    """A message whose Subject is 2 MB of encoded-word starts that never
    close ("=?c?B?A=?c?B?A...", folded), then a part with an attachment.
    GMime's RFC 2047 decoder looks for the "?=" of each start to the end of
    the field: 280 KB took it 8 s, and the time grows with the square (this
    one: several minutes).  MT_CAP_EWORD_STEPS cuts GMime's input before
    the field."""
    line = b" " + b"=?c?B?A" * 10 + b"\r\n"
    body = (b"From: a@hostile.test\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain\r\nSubject:" + line * (2 * 1024 * 1024 // len(line)) +
            b"\r\nbody\r\n")
    s = smtp_start(p)
    normal()
    send_message(s, body)


def gmime_shapes():
    """Header shapes GMime cannot take (found by an audit on 2026-12-06),
    each as {name: a function making the message} (test_hostile counts them
    without building tens of MB in its own process, whose peak would show
    in its later children's): before the GMime guard, two crashed mailtap
    and the others took it from 7 s to several minutes or 1.3 GB."""
    head = b"From: a@hostile.test\r\nMIME-Version: 1.0\r\n"
    body = b"\r\nbody\r\n"
    fold = lambda item, n, per=20: b"".join(b" " + item * per + b"\r\n" for _ in range(n // per))
    return {
        # GMime's address parser nests a call per group: a stack overflow
        "groups": lambda: head + b"To:" + fold(b"g:", 100000) + body,
        # the same behind a stray quote, and in a digest's part without a
        # Content-Type (message/rfc822 there): crashes past the first guard
        "groups_quote": lambda: head + b"To: x\"," + fold(b"g:", 100000) + body,
        "groups_digest": lambda: head + b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n"
                         b"\r\nTo:" + fold(b"g:", 100000) + b"\r\n\r\nx\r\n--d--\r\n",
        # and in a digest's part after one whose block GMime ends at the
        # boundary line (a third audit: a crash past the second guard)
        "groups_digest_dash": lambda: head + b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
                              b"--d\r\nContent-Type: text/plain\r\n--d\r\n\r\nTo:" +
                              fold(b"g:", 100000) + b"\r\n\r\nx\r\n--d--\r\n",
        # and inside a quote after a word (a fourth audit: a crash again)
        "groups_word_quote": lambda: head + b"To: x \", " + b"g:" * 100000 + b"\"\r\n" + body,
        # and after a colon that opens no group (a fifth audit: a crash)
        "groups_angle_quote": lambda: head + b"To: <:\", " + b"g:" * 100000 + b"\"\r\n" + body,
        # many short fields of groups, each under the per-field caps (a
        # sixth audit: 500 MB for these 2 MB, 3.9 GB for 16 MB)
        "groups_fields": lambda: head + (b"To:" + b"g:" * 512 + b"\r\n") * 2000 + body,
        # and many real addresses, many parameters, each field under the
        # caps: 300 and 340 bytes of GMime objects each (250 and 170 MB)
        "addr_items": lambda: head + (b"To: " + b"a@b, " * 200000 + b"x@y\r\n") * 4 + body,
        # (its "body" first: the parts after the field left out are past
        # mime_parts_max)
        "params_parts": lambda: head + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                        b"--b\r\n\r\nbody\r\n\r\n" +
                        (b"--b\r\nContent-Type: text/plain" +
                         b"".join(b"; p%d=v" % i for i in range(64)) + b"\r\n\r\nx\r\n") * 8000 +
                        b"--b--\r\n",
        # a seventh audit, caps over all of GMime's parses of a message:
        # 20 quoted-printable embedded messages of 9,000 digest parts each,
        # below the depth walked, each parse with its own count of "--"
        # lines (817 MB for 1.6 MB); 45,000 empty embedded messages made by
        # digest parts and fields (241 MB for 1.5 MB)
        "delims_reparsed": lambda: head + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n"
                                           b"\r\n--b%d\r\n" % (i, i) for i in range(30)) +
                           b"Content-Type: multipart/mixed; boundary=s\r\n\r\n"
                           b"--s\r\n\r\nbody\r\n\r\n" +
                           (b"--s\r\nContent-Type: message/rfc822\r\n"
                            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                            b"From: a@b\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n" +
                            b"=2D-d\r\n\r\nx\r\n" * 9000 + b"=2D-d--\r\n\r\n") * 20 +
                           b"--s--\r\n",
        "embedded_blocks": lambda: head + b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
                           b"--d\r\nContent-Type: text/plain\r\n\r\nbody\r\n\r\n" +
                           b"".join(b"--d\r\n\r\n" + b"Content-Type:message/rfc822\r\n\r\n" *
                                    (6 if i < 4990 else 5) + b"x\r\n" for i in range(9000)) +
                           b"--d--\r\n",
        # an eighth: parameters hidden in a Base64 word, which GMime reads
        # decoded (184 MB for these 4 MB; distinct names: 71 s for 1 MB)
        "params_hidden": lambda: head + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                         b"--b\r\n\r\nbody\r\n\r\n" +
                         (b"--b\r\nContent-Type: text/plain =?us-ascii?B?" +
                          base64.b64encode(b"; a=v" * 150000) + b"?=\r\n\r\nx\r\n") * 4 +
                         b"--b--\r\n",
        # a 4 MB charset name, copied onto the stack: a crash
        "charset": lambda: head + b"Subject: =?" + b"x" * (4 << 20) + b"?B?YQ==?=\r\n" + body,
        "charset_2231": lambda: head + b"Content-Type: application/octet-stream\r\n"
                        b"Content-Disposition: attachment; filename*=" + b"x" * (4 << 20) +
                        b"''a.bin\r\n" + body,
        # items without an address: 56 s for 256 KB
        "address_items": lambda: head + b"To:" + fold(b"a, ", 90000) + body,
        # distinct parameter names: 13 s for 512 KB
        "parameters": lambda: head + b"Content-Type: text/plain;\r\n" +
                      b"".join(b" p%d=v;\r\n" % i for i in range(60000)) + body,
        # the encoded words of an embedded message's header block: 7 s
        "embedded": lambda: head + b"Content-Type: message/rfc822\r\n\r\nSubject:" +
                    fold(b"=?c?B?A", 40000) + body,
        # 4 MB of Date tokens: over 300 MB (16 MB: 1.3 GB)
        "date": lambda: head + b"Date:" + fold(b"1 ", 2 << 20, 2000) + body,
        # 4 MB of short fields: 334 MB
        "fields": lambda: head + b"X-H: v\r\n" * 500000 + body,
        # a 64 KB field name: GMime gave no message at all
        "name": lambda: head + b"X" * 65536 + b": v\r\n" + body,
    }


def case_gmime_shapes(p, normal):
    """One SMTP session per shape of gmime_shapes(), each a message."""
    normal()
    for i, (name, make) in enumerate(sorted(gmime_shapes().items())):
        s = smtp_start(p, cport=51000 + i)
        send_message(s, make())


def case_mime_parts_100k(p, normal):
    """A multipart message with 100,000 parts."""
    parts = [b"From: a@hostile.test\r\nSubject: wide\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n"]
    parts += [b"--w\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(100000)]
    parts.append(b"--w--\r\n")
    s = smtp_start(p)
    normal()
    send_message(s, b"".join(parts))


def case_syn_flood_1m(p, normal):
    """1,000,000 SYNs to distinct (address, port) pairs: the flow table fills."""
    hdr = bytearray(ETH_IP4 + struct.pack(">BBHHHBBH4s4sHHIIBBHHH", 0x45, 0, 40, 0, 0x4000, 64,
                                          6, 0, ip4("10.77.0.2"), ip4("10.77.0.1"), 40000, 0,
                                          12345, 0, 0x50, SYN, 65535, 0, 0))
    rec = struct.Struct("<IIII")
    n = len(hdr)
    w = p.f.write
    for i in range(1000000):
        if i == 500000:
            normal()
        # destination 10.77.<i / 65000>.1, port 1 + i % 65000
        hdr[30 + 2] = (i // 65000) & 0xFF
        struct.pack_into(">H", hdr, 36, 1 + i % 65000)
        p.ts += 1
        w(rec.pack(p.ts // 1000000, p.ts % 1000000, n, n))
        w(hdr)


def case_overlap_conflict(p, normal):
    """Client data where every segment is sent twice with different bytes
    (the second copy overlapping the first and the next), 20,000 times."""
    s = smtp_start(p)
    s.c(b"MAIL FROM:<a@hostile.test>\r\n").s(b"250 OK\r\n")
    for i in range(20000):
        if i == 10000:
            normal()
        line = b"RCPT TO:<r%05d@victim.test>\r\n" % i
        evil = b"RCPT TO:<e%05d@attack.test>\r\n" % i
        seq = s.seq[0]
        s.raw(0, seq, line)
        s.seq[0] += len(line)
        s.raw(0, seq, evil)               # same bytes range, other content
        s.raw(0, seq + 5, evil[:10])      # a partial overlap inside it
        if i % 100 == 99:
            s.s(b"250 OK\r\n" * 100)
    s.c(b"QUIT\r\n").s(b"221 bye\r\n")
    s.close()


def case_ooo_tiny_segments(p, normal):
    """Out-of-order one-byte segments that never join up, 100,000 in each of
    two flows: in one each lands in the middle of what is buffered (before
    a segment far ahead, after the earlier ones: a sorted list walked from
    its head is quadratic), in the other each lands before everything
    buffered (descending: payload bytes alone would let a million of them,
    and their headers, stay under ooo_max)."""
    n = 100000
    a = smtp_start(p, cport=50010)
    b = smtp_start(p, client="10.66.0.3", cport=50011)
    base_a, base_b = a.seq[0] + 10, b.seq[0] + 10  # a 10-byte hole first
    a.raw(0, base_a + 4 * n, b"Z")
    for i in range(n):
        if i == n // 2:
            normal()
        a.raw(0, base_a + 2 * i, b"A")
        b.raw(0, base_b + 2 * (n - i), b"B")
    a.close()
    b.close()


def case_ooo_wide_segments(p, normal):
    """Out-of-order 160-byte segments that never join, 25,000 in each of 16
    flows, each landing in the middle of what its flow buffers (before a
    segment far ahead, after the earlier ones), the flows taking turns.
    About 4,000 segments of 160 bytes stay buffered in each flow, 15 MB in
    all: a sorted list walked from its head misses the cache at each step
    (51 s for this capture before the segments were kept in an array
    searched by halves, 0.3 s after)."""
    flows, per, size = 16, 25000, 160
    sess = []
    for i in range(flows):
        s = smtp_start(p, client="10.66.1.%d" % (i + 2), cport=50100 + i)
        base = s.seq[0] + 10  # a 10-byte hole first
        s.raw(0, base + 2 * size * (per + 10), b"Z" * size)
        sess.append((s, base))
    pay = b"W" * size
    for k in range(per):
        if k == per // 2:
            normal()
        for s, base in sess:
            s.raw(0, base + 2 * size * k, pay)
    for s, _ in sess:
        s.close()


def case_nul_bare(p, normal):
    """Commands with NUL bytes, bare LF and bare CR."""
    s = smtp_start(p)
    s.c(b"NOOP a\x00b\r\n").s(b"250 OK\r\n")
    s.c(b"NOOP bare lf\n").s(b"250 OK\r\n")
    normal()
    s.c(b"NOOP bare\rcr\r\n").s(b"250 OK\r\n")
    s.c(b"MAIL FROM:<a\x00@hostile.test>\r\n").s(b"250 OK\r\n")
    s.c(b"QUIT\r\n").s(b"221\x00bye\r\n")
    s.close()


def case_compress_flood_10k(p, normal):
    """10,000 IMAP sessions that turn COMPRESS=DEFLATE on and all inflate at
    once, then close.  Each inflates 33,000 bytes each way while every one is
    open (literals, whose bytes cost little to skip), enough to fill zlib's
    32 KiB windows: without inflate_max that is about 78 KiB a session."""
    import zlib
    sess = []
    for i in range(10000):
        s = Session(p, "10.88.%d.%d" % (i // 250, 2 + i % 250), "10.88.255.1", 40000 + i % 20000, 143)
        s.handshake()
        s.s(b"* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready\r\n")
        s.c(b"c1 COMPRESS DEFLATE\r\n").s(b"c1 OK DEFLATE active\r\n")
        sess.append(s)
    normal()

    def deflated(data):  # each session's deflate stream starts afresh: the same bytes for all
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    fill = b"A" * 33000
    c2s = deflated(b"c2 X-FILL {33000+}\r\n" + fill + b"\r\n")
    s2c = deflated(b"* 1 FETCH (X-FILL {33000}\r\n" + fill + b")\r\nc2 OK done\r\n")
    for s in sess:
        s.c(c2s).s(s2c)
    for s in sess:
        s.close()


CASES = {
    "imap_literal_4g": case_imap_literal_4g,
    "line_100mb": case_line_100mb,
    "rcpt_100k": case_rcpt_100k,
    "mime_depth_10000": case_mime_depth_10000,
    "mime_parts_100k": case_mime_parts_100k,
    "syn_flood_1m": case_syn_flood_1m,
    "overlap_conflict": case_overlap_conflict,
    "ooo_tiny_segments": case_ooo_tiny_segments,
    "ooo_wide_segments": case_ooo_wide_segments,
    "ewords_unclosed": case_ewords_unclosed,
    "gmime_shapes": case_gmime_shapes,
    "nul_bare": case_nul_bare,
    "compress_flood_10k": case_compress_flood_10k,
}


def write_case(name, outdir):
    path = os.path.join(outdir, name + ".pcap")
    p = Pcap(path)
    normal = Normal(p)
    CASES[name](p, normal)
    p.close()
    return path


# ---------------------------------------------------------------- pcapng


def ng_block(btype, body):
    body = body + b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def ng_epb(ts_us, frame):
    return ng_block(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(frame),
                                   len(frame)) + frame)


def pcapng_header():
    shb = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = ng_block(1, struct.pack("<HHI", 1, 0, 262144))
    return shb + idb


def normal_epbs():
    ts = 1700000000 * 1000000
    return [ng_epb(ts + 10 * i, fr) for i, fr in enumerate(read_pcap_frames(NORMAL_SAMPLE))]


def write_pcapng_unknown_block(outdir):
    """The normal session with well-formed blocks of unknown types between
    its packets (a local-use type and an unassigned one): all skipped."""
    epbs = normal_epbs()
    out = bytearray(pcapng_header())
    for i, b in enumerate(epbs):
        if i == 3:
            out += ng_block(0x0BAD0001, b"an unassigned block type, skipped\n")
        if i == len(epbs) // 2:
            out += ng_block(0x80000123, b"a local-use block type" + bytes(range(64)))
        out += b
    path = os.path.join(outdir, "pcapng_unknown_block.pcapng")
    with open(path, "wb") as f:
        f.write(out)
    return path


def write_pcapng_damaged(outdir, kind):
    """The normal session's packets up to the end of its message, then a
    block whose length is damaged (kind "short": 7, below the 12-byte
    minimum and not a multiple of 4; "huge": 0x7ffffff0, past the end of
    the file; "mismatch": the trailing copy of the length differs), then
    the rest.  Returns (path, offset of the damaged block, packets before)."""
    epbs = normal_epbs()
    keep = len(epbs) - 4  # the closing QUIT/221/FIN exchange comes after the damage
    out = bytearray(pcapng_header())
    for b in epbs[:keep]:
        out += b
    off = len(out)
    bad = bytearray(epbs[keep])
    if kind == "short":
        struct.pack_into("<I", bad, 4, 7)
    elif kind == "huge":
        struct.pack_into("<I", bad, 4, 0x7FFFFFF0)
    else:
        struct.pack_into("<I", bad, len(bad) - 4, len(bad) + 4)
    out += bad
    for b in epbs[keep + 1:]:
        out += b
    path = os.path.join(outdir, "pcapng_damaged_%s.pcapng" % kind)
    with open(path, "wb") as f:
        f.write(out)
    return path, off, keep


def main(argv):
    if len(argv) >= 2 and argv[1] == "-l":
        print("\n".join(list(CASES) + ["pcapng_unknown_block", "pcapng_damaged_short",
                                       "pcapng_damaged_huge", "pcapng_damaged_mismatch"]))
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    names = argv[2:] or list(CASES) + ["pcapng"]
    for name in names:
        if name == "pcapng" or name == "pcapng_unknown_block":
            print(write_pcapng_unknown_block(outdir))
        if name == "pcapng" or name.startswith("pcapng_damaged"):
            for kind in ("short", "huge", "mismatch"):
                if name in ("pcapng", "pcapng_damaged_" + kind):
                    path, off, _ = write_pcapng_damaged(outdir, kind)
                    print("%s\t%d" % (path, off))  # where the damaged block starts
        if name in CASES:
            print(write_case(name, outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
