#!/usr/bin/env python3
"""pcaptool: read, write, perturb and re-encapsulate captures for mailtap's tests.

Standard library only (Python 3.11).  Used as a library by the test scripts and
as a command-line tool:

  pcaptool.py synth OUT.pcap [--ipv6] [--sessions N] [--seed S]
  pcaptool.py perturb IN OUT --mode MODE [--seed S] [--report R.json] [...]
  pcaptool.py encap IN OUT --to VARIANT [--snaplen N] [--frag-size N]
  pcaptool.py expected IN [--out DIR]      expected reassembled streams (JSON)
  pcaptool.py dump IN                      one line per packet

Reading: classic pcap (both byte orders, microsecond and nanosecond), pcapng
(SHB/IDB/EPB/SPB), gzip-compressed either.  Link layers: Ethernet (with any
number of 802.1Q/802.1ad tags), BSD NULL/LOOP, raw IP (12, 14, 101, 228, 229),
Linux SLL and SLL2.  IPv4 (with fragment reassembly for the expected streams),
IPv6 (hop-by-hop, routing, destination options), TCP.

Perturbations (TCP data segments only; everything else is kept):
  reorder, reorder-wide, duplicate, overlap-identical, overlap-conflict,
  resplit-1, resplit-random, drop-one, midstream, none
Variants (re-encapsulation and file format):
  ether, vlan, qinq, sll, sll2, raw, raw12, null, loop, ipfrag, ipfrag-ooo,
  ipfrag-drop, ipv6, ipv6ext, snaplen, pcapng, pcap-nsec, pcap-be, badsum

The expected streams follow mailtap's contract: per flow and direction, the
payload bytes in sequence order, the first copy of a byte wins, missing bytes
are not filled but reported as gaps (offset counted from the direction's first
byte, missing ones included).
"""

import argparse
import gzip
import ipaddress
import json
import glob
import os
import random
import struct
import sys
from dataclasses import dataclass, field, replace

# Link types (LINKTYPE_* values as stored in files).
LT_NULL = 0
LT_ETHERNET = 1
LT_RAW12 = 12       # DLT_RAW on most platforms; libpcap accepts it in files
LT_RAW14 = 14       # DLT_RAW on OpenBSD
LT_RAW = 101        # LINKTYPE_RAW
LT_LOOP = 108
LT_SLL = 113
LT_IPV4 = 228
LT_IPV6 = 229
LT_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
ETH_QINQ_OLD = 0x9100

TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK, TH_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

SEQ_MOD = 1 << 32

# BSD address families used by DLT_NULL / DLT_LOOP.
AF_INET = 2
AF_INET6_BSD = 24
AF_INET6_ALL = (10, 24, 28, 30)

IPV6_MAP_PREFIX = "2001:db8:4d54::"   # IPv4 a.b.c.d becomes 2001:db8:4d54::a.b.c.d


# ----------------------------------------------------------------------------
# Capture files

@dataclass
class Packet:
    ts: int            # nanoseconds since the epoch
    data: bytes        # captured bytes
    origlen: int       # length on the wire


@dataclass
class Capture:
    linktype: int
    packets: list
    snaplen: int = 262144
    nsec: bool = False
    big_endian: bool = False
    fmt: str = "pcap"   # "pcap" or "pcapng" (of the file read)


def _open_maybe_gz(path):
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        with gzip.open(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_capture(path):
    """Read a pcap or pcapng file (optionally gzip-compressed)."""
    buf = _open_maybe_gz(path)
    if len(buf) < 24 and not buf.startswith(b"\x0a\x0d\x0d\x0a"):
        raise ValueError(f"{path}: too short for a capture file")
    if buf[:4] == b"\x0a\x0d\x0d\x0a":
        return _read_pcapng(buf, path)
    return _read_pcap(buf, path)


def _read_pcap(buf, path):
    magic = buf[:4]
    table = {
        b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
        b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True),
    }
    if magic not in table:
        raise ValueError(f"{path}: not a pcap file (magic {magic.hex()})")
    e, nsec = table[magic]
    _vmaj, _vmin, _tz, _sig, snaplen, linktype = struct.unpack(e + "HHiIII", buf[4:24])
    linktype &= 0x0FFFFFFF   # upper bits may carry FCS information
    pkts = []
    off = 24
    while off + 16 <= len(buf):
        sec, frac, caplen, origlen = struct.unpack(e + "IIII", buf[off:off + 16])
        off += 16
        data = buf[off:off + caplen]
        off += caplen
        if len(data) < caplen:
            break   # truncated file: keep what we have
        ts = sec * 1_000_000_000 + (frac if nsec else frac * 1000)
        pkts.append(Packet(ts, bytes(data), origlen))
    return Capture(linktype, pkts, snaplen, nsec, e == ">", "pcap")


def _read_pcapng(buf, path):
    off = 0
    e = "<"
    ifaces = []   # (linktype, snaplen, ts_divisor_ns)
    pkts = []
    linktype = None
    snaplen = 262144
    while off + 12 <= len(buf):
        btype_raw = buf[off:off + 4]
        if btype_raw == b"\x0a\x0d\x0d\x0a":
            bom = buf[off + 8:off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        btype, blen = struct.unpack(e + "II", buf[off:off + 8])
        if blen < 12 or off + blen > len(buf):
            break
        body = buf[off + 8:off + blen - 4]
        if btype == 1:   # Interface Description Block
            lt, _res, snap = struct.unpack(e + "HHI", body[:8])
            tsdiv = _pcapng_tsresol(body[8:], e)
            ifaces.append((lt, snap, tsdiv))
            if linktype is None:
                linktype, snaplen = lt, snap or 262144
        elif btype == 6:  # Enhanced Packet Block
            ifid, tsh, tsl, caplen, origlen = struct.unpack(e + "IIIII", body[:20])
            data = body[20:20 + caplen]
            lt, _snap, tsdiv = ifaces[ifid] if ifid < len(ifaces) else (linktype, 0, (1000, True))
            if lt == linktype:
                pkts.append(Packet(_pcapng_ts(tsh, tsl, tsdiv), bytes(data), origlen))
        elif btype == 3:  # Simple Packet Block
            (origlen,) = struct.unpack(e + "I", body[:4])
            snap = ifaces[0][1] if ifaces else 0
            caplen = min(origlen, snap) if snap else origlen
            pkts.append(Packet(0, bytes(body[4:4 + caplen]), origlen))
        off += blen
    if linktype is None:
        raise ValueError(f"{path}: pcapng without an interface")
    return Capture(linktype, pkts, snaplen, True, e == ">", "pcapng")


def _pcapng_tsresol(opts, e):
    """Return (units per second) from the if_tsresol option (default 10^6)."""
    o = 0
    while o + 4 <= len(opts):
        code, olen = struct.unpack(e + "HH", opts[o:o + 4])
        if code == 0:
            break
        if code == 9 and olen >= 1:
            v = opts[o + 4]
            return (2 ** (v & 0x7F)) if v & 0x80 else (10 ** v)
        o += 4 + ((olen + 3) & ~3)
    return 10 ** 6


def _pcapng_ts(tsh, tsl, units):
    t = (tsh << 32) | tsl
    return t * 1_000_000_000 // units


def write_capture(path, cap, fmt=None, nsec=None, big_endian=None, snaplen=None):
    """Write cap as classic pcap or pcapng.  snaplen cuts packets on the way out."""
    fmt = fmt or "pcap"
    nsec = cap.nsec if nsec is None else nsec
    big_endian = cap.big_endian if big_endian is None else big_endian
    snap = snaplen or cap.snaplen or 262144
    out = bytearray()
    if fmt == "pcapng":
        e = ">" if big_endian else "<"
        shb_body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        out += _pcapng_block(e, 0x0A0D0D0A, shb_body)
        # if_tsresol = 9 (nanoseconds) so timestamps survive unchanged.
        opts = struct.pack(e + "HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack(e + "HH", 0, 0)
        out += _pcapng_block(e, 1, struct.pack(e + "HHI", cap.linktype, 0, snap) + opts)
        for p in cap.packets:
            data = p.data[:snap]
            t = p.ts
            body = struct.pack(e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(data), p.origlen)
            body += data + b"\x00" * ((4 - len(data) % 4) % 4)
            out += _pcapng_block(e, 6, body)
    else:
        e = ">" if big_endian else "<"
        magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
        out += struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snap, cap.linktype)
        for p in cap.packets:
            data = p.data[:snap]
            sec, ns = divmod(p.ts, 1_000_000_000)
            frac = ns if nsec else ns // 1000
            out += struct.pack(e + "IIII", sec, frac, len(data), p.origlen) + data
    with open(path, "wb") as f:
        f.write(out)


def _pcapng_block(e, btype, body):
    blen = 12 + len(body)
    return struct.pack(e + "II", btype, blen) + body + struct.pack(e + "I", blen)


# ----------------------------------------------------------------------------
# Checksums

def inet_checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_checksum(src, dst, tcp_bytes):
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp_bytes))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(tcp_bytes), 6)
    return inet_checksum(pseudo + tcp_bytes)


# ----------------------------------------------------------------------------
# Decoded packets

@dataclass
class Seg:
    """A TCP segment with enough of its IP header to re-encode it."""
    ver: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    win: int
    payload: bytes
    options: bytes = b""
    urp: int = 0
    # IPv4
    tos: int = 0
    ident: int = 0
    df: bool = True
    ttl: int = 64
    ipopts: bytes = b""
    # IPv6
    tclass: int = 0
    flowlabel: int = 0
    ext: list = field(default_factory=list)   # [(type, bytes)] before TCP
    # Truncation: number of payload bytes the IP header claims (>= len(payload))
    claimed: int = -1
    bad_csum: bool = False

    @property
    def plen(self):
        return self.claimed if self.claimed >= 0 else len(self.payload)

    @property
    def truncated(self):
        return self.claimed > len(self.payload)

    def endpoints(self):
        return (ip_str(self.src), self.sport), (ip_str(self.dst), self.dport)

    def encode_tcp(self):
        opts = self.options + b"\x00" * ((4 - len(self.options) % 4) % 4)
        off = (20 + len(opts)) // 4
        hdr = struct.pack("!HHIIBBHHH", self.sport, self.dport, self.seq % SEQ_MOD,
                          self.ack % SEQ_MOD, (off << 4) | ((self.flags >> 8) & 1),
                          self.flags & 0xFF, self.win, 0, self.urp) + opts
        seg = hdr + self.payload
        c = tcp_checksum(self.src, self.dst, seg)
        if self.bad_csum:
            c ^= 0x5A5A
        return seg[:16] + struct.pack("!H", c) + seg[18:]

    def encode_ip(self):
        tcp = self.encode_tcp()
        if self.ver == 4:
            opts = self.ipopts + b"\x00" * ((4 - len(self.ipopts) % 4) % 4)
            ihl = (20 + len(opts)) // 4
            hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, self.tos, ihl * 4 + len(tcp),
                              self.ident & 0xFFFF, 0x4000 if self.df else 0, self.ttl, 6, 0,
                              self.src, self.dst) + opts
            hdr = hdr[:10] + struct.pack("!H", inet_checksum(hdr)) + hdr[12:]
            return hdr + tcp
        exts = b""
        types = [t for t, _ in self.ext] + [6]
        for i, (_t, body) in enumerate(self.ext):
            exts += bytes([types[i + 1]]) + body[1:]
        first = types[0]
        hdr = struct.pack("!IHBB16s16s", (6 << 28) | (self.tclass << 20) | self.flowlabel,
                          len(exts) + len(tcp), first, self.ttl, self.src, self.dst)
        return hdr + exts + tcp


@dataclass
class Frame:
    """One captured packet, split into link information and layer 3."""
    ts: int
    src_mac: bytes = b"\x02\x00\x00\x00\x00\x01"
    dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02"
    ethertype: int = 0        # 0: not decoded at layer 3
    l3: bytes = b""           # captured layer-3 bytes (when not a Seg)
    l3_origlen: int = 0       # wire length of layer 3
    seg: Seg = None           # set when the packet is a complete-header TCP segment
    raw: bytes = b""          # original frame bytes (link layer included)
    raw_linktype: int = -1
    raw_origlen: int = 0
    pkt_type: int = 0         # SLL packet type when read from SLL

    def l3_bytes(self):
        if self.seg is not None and not self.seg.truncated:
            return self.seg.encode_ip()
        return self.l3

    def l3_wirelen(self):
        if self.seg is not None and not self.seg.truncated:
            return len(self.seg.encode_ip())
        return self.l3_origlen


def ip_str(b):
    if len(b) == 4:
        return str(ipaddress.IPv4Address(b))
    return str(ipaddress.IPv6Address(b))


def decode_link(linktype, data):
    """Return (ethertype, offset of layer 3, src_mac, dst_mac, pkt_type) or None."""
    n = len(data)
    if linktype == LT_ETHERNET:
        if n < 14:
            return None
        dst, src = data[0:6], data[6:12]
        et = struct.unpack("!H", data[12:14])[0]
        off = 14
        while et in (ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD):
            if n < off + 4:
                return None
            et = struct.unpack("!H", data[off + 2:off + 4])[0]
            off += 4
        return et, off, src, dst, 0
    if linktype in (LT_NULL, LT_LOOP):
        if n < 4:
            return None
        fam = struct.unpack(">I" if linktype == LT_LOOP else "<I", data[:4])[0]
        if linktype == LT_NULL and fam > 0xFFFF:   # written by a host of the other order
            fam = struct.unpack(">I", data[:4])[0]
        et = ETH_IPV4 if fam == AF_INET else ETH_IPV6 if fam in AF_INET6_ALL else 0
        return et, 4, None, None, 0
    if linktype in (LT_RAW, LT_RAW12, LT_RAW14, LT_IPV4, LT_IPV6):
        if n < 1:
            return None
        v = data[0] >> 4
        return (ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0), 0, None, None, 0
    if linktype == LT_SLL:
        if n < 16:
            return None
        ptype, _hatype, alen = struct.unpack("!HHH", data[:6])
        et = struct.unpack("!H", data[14:16])[0]
        mac = data[6:6 + min(alen, 8)]
        return et, 16, mac, None, ptype
    if linktype == LT_SLL2:
        if n < 20:
            return None
        et = struct.unpack("!H", data[0:2])[0]
        ptype, alen = data[10], data[11]
        mac = data[12:12 + min(alen, 8)]
        return et, 20, mac, None, ptype
    return None


def decode_frame(linktype, pkt):
    """Decode one packet into a Frame (never raises on malformed data)."""
    fr = Frame(ts=pkt.ts, raw=pkt.data, raw_linktype=linktype, raw_origlen=pkt.origlen)
    link = decode_link(linktype, pkt.data)
    if link is None:
        return fr
    et, off, src, dst, ptype = link
    if src and len(src) == 6:
        fr.src_mac = src
    if dst and len(dst) == 6:
        fr.dst_mac = dst
    fr.pkt_type = ptype
    fr.ethertype = et
    fr.l3 = pkt.data[off:]
    fr.l3_origlen = pkt.origlen - off
    if et in (ETH_IPV4, ETH_IPV6):
        fr.seg = decode_ip_tcp(fr.l3)
    return fr


def decode_ip_tcp(l3):
    """Decode an unfragmented IP datagram carrying TCP into a Seg, else None.

    The payload is cut at the IP total length (Ethernet padding dropped) and at
    the captured length (then seg.claimed says how long it really was)."""
    try:
        if len(l3) < 20:
            return None
        v = l3[0] >> 4
        if v == 4:
            ihl = (l3[0] & 0x0F) * 4
            tot = struct.unpack("!H", l3[2:4])[0]
            fragw = struct.unpack("!H", l3[6:8])[0]
            if ihl < 20 or l3[9] != 6 or (fragw & 0x3FFF) or tot < ihl:
                return None
            kw = dict(ver=4, tos=l3[1], ident=struct.unpack("!H", l3[4:6])[0],
                      df=bool(fragw & 0x4000), ttl=l3[8], ipopts=bytes(l3[20:ihl]),
                      src=bytes(l3[12:16]), dst=bytes(l3[16:20]))
            return _decode_tcp(l3, ihl, tot, kw)
        if v == 6:
            if len(l3) < 40:
                return None
            w0, plen, nh, hlim = struct.unpack("!IHBB", l3[:8])
            off = 40
            ext = []
            while nh in (0, 43, 60):
                if len(l3) < off + 8:
                    return None
                hl = (l3[off + 1] + 1) * 8
                ext.append((nh, bytes(l3[off:off + hl])))
                nh = l3[off]
                off += hl
            if nh != 6:
                return None
            kw = dict(ver=6, tclass=(w0 >> 20) & 0xFF, flowlabel=w0 & 0xFFFFF, ttl=hlim,
                      src=bytes(l3[8:24]), dst=bytes(l3[24:40]), ext=ext)
            return _decode_tcp(l3, off, 40 + plen, kw)
    except (struct.error, IndexError):
        return None
    return None


def _decode_tcp(l3, off, tot, kw):
    if len(l3) < off + 20:
        return None
    sport, dport, seq, ack, offres, fl, win, _c, urp = struct.unpack(
        "!HHIIBBHHH", l3[off:off + 20])
    thl = (offres >> 4) * 4
    if thl < 20 or len(l3) < off + thl or tot < off + thl:
        return None
    payload = bytes(l3[off + thl:tot])
    claimed = tot - off - thl
    return Seg(sport=sport, dport=dport, seq=seq, ack=ack, flags=fl | ((offres & 1) << 8),
               win=win, urp=urp, options=bytes(l3[off + 20:off + thl]), payload=payload,
               claimed=claimed if claimed != len(payload) else -1, **kw)


def decode_capture(cap):
    return [decode_frame(cap.linktype, p) for p in cap.packets]


# ----------------------------------------------------------------------------
# Encoding frames back into a capture

def encode_link(linktype, fr, l3, tags=()):
    et = ETH_IPV4 if (l3[:1] and l3[0] >> 4 == 4 and fr.ethertype in (ETH_IPV4, ETH_IPV6)) \
        else ETH_IPV6 if (l3[:1] and l3[0] >> 4 == 6 and fr.ethertype in (ETH_IPV4, ETH_IPV6)) \
        else fr.ethertype
    if linktype == LT_ETHERNET:
        hdr = fr.dst_mac + fr.src_mac
        for tpid, vid in tags:
            hdr += struct.pack("!HH", tpid, vid & 0x0FFF)
        return hdr + struct.pack("!H", et)
    if et not in (ETH_IPV4, ETH_IPV6) and linktype not in (LT_SLL, LT_SLL2):
        return None
    if linktype in (LT_RAW, LT_RAW12):
        return b""
    if linktype == LT_NULL:
        return struct.pack("<I", AF_INET if et == ETH_IPV4 else AF_INET6_BSD)
    if linktype == LT_LOOP:
        return struct.pack(">I", AF_INET if et == ETH_IPV4 else AF_INET6_BSD)
    if linktype == LT_SLL:
        return struct.pack("!HHH", fr.pkt_type, 1, 6) + fr.src_mac + b"\x00\x00" + \
            struct.pack("!H", et)
    if linktype == LT_SLL2:
        return struct.pack("!HHIHBB", et, 0, 1, 1, fr.pkt_type, 6) + fr.src_mac + b"\x00\x00"
    raise ValueError(f"cannot encode link type {linktype}")


def encode_frames(frames, linktype, tags=(), snaplen=262144):
    pkts = []
    for fr in frames:
        if fr.ethertype == 0 or (fr.seg is None and not fr.l3):
            if fr.raw_linktype == linktype and fr.raw:
                pkts.append(Packet(fr.ts, fr.raw, fr.raw_origlen))
            continue
        l3 = fr.l3_bytes()
        hdr = encode_link(linktype, fr, l3, tags)
        if hdr is None:
            continue
        pkts.append(Packet(fr.ts, hdr + l3, len(hdr) + fr.l3_wirelen()))
    return Capture(linktype, pkts, snaplen)


# ----------------------------------------------------------------------------
# Flows

@dataclass
class FlowInfo:
    key: tuple             # (client endpoint, server endpoint)
    index: int             # order of first appearance
    frames: list = field(default_factory=list)   # indices into the frame list

    @property
    def client(self):
        return self.key[0]

    @property
    def server(self):
        return self.key[1]

    def direction(self, seg):
        return "c2s" if seg.endpoints()[0] == self.client else "s2c"


SERVER_PORTS = {25, 465, 587, 2525, 110, 995, 143, 993, 4190, 80, 443, 6379}


def guess_client_server(a, b):
    """Order two endpoints as (client, server) when no SYN says which is which."""
    pa, pb = a[1], b[1]
    if (pb in SERVER_PORTS) != (pa in SERVER_PORTS):
        return (a, b) if pb in SERVER_PORTS else (b, a)
    return (a, b) if pb < pa else (b, a)


def find_flows(frames):
    """Group the TCP frames into flows; a new SYN after a closed flow starts a new one."""
    flows = []
    current = {}   # unordered endpoint pair -> FlowInfo
    closed = set()
    for i, fr in enumerate(frames):
        s = fr.seg
        if s is None:
            continue
        a, b = s.endpoints()
        pair = frozenset((a, b)) if a != b else (a, b)
        syn_only = (s.flags & (TH_SYN | TH_ACK)) == TH_SYN
        synack = (s.flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK)
        fl = current.get(pair)
        if fl is not None and syn_only and pair in closed:
            fl = None
        if fl is None:
            if syn_only:
                key = (a, b)
            elif synack:
                key = (b, a)
            else:
                key = guess_client_server(a, b)
            fl = FlowInfo(key, len(flows))
            flows.append(fl)
            current[pair] = fl
            closed.discard(pair)
        fl.frames.append(i)
        if s.flags & (TH_FIN | TH_RST):
            closed.add(pair)
    return flows


# ----------------------------------------------------------------------------
# Expected streams

@dataclass
class Stream:
    data: bytes = b""          # delivered bytes, gaps not filled
    gaps: list = field(default_factory=list)   # [(offset, length)]
    conflicts: int = 0         # bytes that differed from the first copy
    base: int = None           # sequence number of offset 0

    def to_json(self):
        return {"len": len(self.data), "gaps": [list(g) for g in self.gaps],
                "conflicts": self.conflicts}


@dataclass
class FlowStreams:
    client: tuple
    server: tuple
    c2s: Stream
    s2c: Stream
    start: int = 0
    syn_seen: bool = False

    def to_json(self):
        return {"client": {"ip": self.client[0], "port": self.client[1]},
                "server": {"ip": self.server[0], "port": self.server[1]},
                "c2s": self.c2s.to_json(), "s2c": self.s2c.to_json()}


def _reassemble_dir(segs):
    """segs: [(seq, flags, payload, claimed)] in capture order -> Stream."""
    base = None
    for seq, fl, _p, _c in segs:
        if fl & TH_SYN:
            base = (seq + 1) % SEQ_MOD
            break
    if base is None:
        for seq, fl, p, c in segs:
            if c > 0:
                base = seq
                break
    if base is None:
        return Stream()
    buf = bytearray()
    have = bytearray()
    known_end = 0
    conflicts = 0
    for seq, fl, p, claimed in segs:
        off = (seq - base) % SEQ_MOD
        if off >= 1 << 31:   # before the stream start (e.g. the SYN itself)
            if fl & TH_SYN:
                off, p = 0, p
                claimed = claimed
            else:
                skip = SEQ_MOD - off
                p = p[skip:]
                claimed = max(0, claimed - skip)
                off = 0
        end = off + claimed
        if claimed > 0:
            known_end = max(known_end, end)
        if fl & TH_FIN:
            known_end = max(known_end, end)
        if not p:
            continue
        if len(buf) < off + len(p):
            grow = off + len(p) - len(buf)
            buf += b"\x00" * grow
            have += b"\x00" * grow
        for k, byte in enumerate(p):
            j = off + k
            if have[j]:
                if buf[j] != byte:
                    conflicts += 1
            else:
                buf[j] = byte
                have[j] = 1
    if len(have) < known_end:
        have += b"\x00" * (known_end - len(have))
        buf += b"\x00" * (known_end - len(buf))
    out = bytearray()
    gaps = []
    j = 0
    n = len(have)
    while j < n:
        if have[j]:
            k = have.find(b"\x00", j)
            k = n if k < 0 else k
            out += buf[j:k]
        else:
            k = have.find(b"\x01", j)
            k = n if k < 0 else k
            gaps.append((j, k - j))
        j = k
    return Stream(bytes(out), gaps, conflicts, base)


def defragment(frames):
    """Reassemble IPv4 fragments into whole datagrams (for the expected streams)."""
    out = []
    pending = {}
    for fr in frames:
        l3 = fr.l3
        if fr.ethertype == ETH_IPV4 and fr.seg is None and len(l3) >= 20:
            fragw = struct.unpack("!H", l3[6:8])[0]
            if fragw & 0x3FFF:
                ihl = (l3[0] & 0x0F) * 4
                tot = struct.unpack("!H", l3[2:4])[0]
                key = (l3[12:20], l3[4:6], l3[9])
                st = pending.setdefault(key, {"parts": {}, "last": None, "hdr": None})
                foff = (fragw & 0x1FFF) * 8
                st["parts"][foff] = l3[ihl:tot]
                if foff == 0:
                    st["hdr"] = l3[:ihl]
                if not fragw & 0x2000:
                    st["last"] = foff + tot - ihl
                if st["hdr"] is not None and st["last"] is not None:
                    data = bytearray(st["last"])
                    got = bytearray(st["last"])
                    for o, d in st["parts"].items():
                        data[o:o + len(d)] = d[:max(0, st["last"] - o)]
                        got[o:o + len(d)] = b"\x01" * len(d[:max(0, st["last"] - o)])
                    if all(got):
                        hdr = bytearray(st["hdr"])
                        hdr[2:4] = struct.pack("!H", len(hdr) + len(data))
                        hdr[6:8] = b"\x00\x00"
                        whole = bytes(hdr) + bytes(data)
                        nf = replace(fr, l3=whole, l3_origlen=len(whole),
                                     seg=decode_ip_tcp(whole))
                        out.append(nf)
                        del pending[key]
                continue
        out.append(fr)
    return out


def expected_streams(cap_or_frames):
    """Expected reassembly of every TCP flow: a list of FlowStreams."""
    frames = cap_or_frames
    if isinstance(cap_or_frames, Capture):
        frames = decode_capture(cap_or_frames)
    frames = defragment(frames)
    result = []
    for fl in find_flows(frames):
        per = {"c2s": [], "s2c": []}
        syn = False
        for i in fl.frames:
            s = frames[i].seg
            if s.flags & TH_RST:
                continue
            if s.flags & TH_SYN:
                syn = True
            per[fl.direction(s)].append((s.seq, s.flags, s.payload, s.plen))
        result.append(FlowStreams(fl.client, fl.server, _reassemble_dir(per["c2s"]),
                                  _reassemble_dir(per["s2c"]), frames[fl.frames[0]].ts, syn))
    return result


# ----------------------------------------------------------------------------
# Perturbations of TCP data segments

def _is_data(fr):
    return fr.seg is not None and fr.seg.payload and not fr.seg.truncated


def _flow_dirs(frames):
    """Yield (flow, dir, [frame indices of data segments]) for every flow direction."""
    for fl in find_flows(frames):
        for d in ("c2s", "s2c"):
            idx = [i for i in fl.frames if _is_data(frames[i])
                   and fl.direction(frames[i].seg) == d]
            yield fl, d, idx


def _overlapping(frames, fl, d, idx):
    """Indices in idx whose bytes overlap another data segment of the direction.

    Such segments (retransmissions, crafted overlaps) are left in place by the
    perturbations: moving them could change which copy of a byte comes first."""
    base = _dir_base(frames, fl, d)
    if base is None:
        return set()
    rng = sorted(((frames[i].seg.seq - base) % SEQ_MOD, len(frames[i].seg.payload), i)
                 for i in idx)
    out = set()
    end, owner = -1, None
    for o, n, i in rng:
        if o < end:
            out.add(i)
            out.add(owner)
        if o + n > end:
            end, owner = o + n, i
    return out


def _flow_json(fl):
    return {"client": {"ip": fl.client[0], "port": fl.client[1]},
            "server": {"ip": fl.server[0], "port": fl.server[1]}}


def _dir_base(frames, fl, d):
    for i in fl.frames:
        s = frames[i].seg
        if fl.direction(s) == d and s.flags & TH_SYN:
            return (s.seq + 1) % SEQ_MOD
    for i in fl.frames:
        s = frames[i].seg
        if fl.direction(s) == d and s.payload:
            return s.seq
    return None


def _clone(fr, **segchanges):
    return replace(fr, seg=replace(fr.seg, **segchanges))


def _insert_after(frames, inserts):
    """inserts: {index: [frames to place after frames[index]]}; -1 means at the start."""
    out = list(inserts.get(-1, []))
    for i, fr in enumerate(frames):
        out.append(fr)
        out.extend(inserts.get(i, []))
    return out


def perturb(frames, mode, seed=1, window=4, prob=1.0, skip=3, max_bytes=None,
            max_piece=64, pick=None):
    """Return (new frames, report dict).  frames come from decode_capture."""
    rng = random.Random(seed)
    report = {"mode": mode, "seed": seed}
    frames = list(frames)
    if mode == "none":
        return frames, report
    if mode in ("reorder", "reorder-wide"):
        moved = 0
        new = list(frames)
        for fl, d, idx in _flow_dirs(frames):
            ovl = _overlapping(frames, fl, d, idx)
            movable = [i for i in idx if not frames[i].seg.flags & (TH_SYN | TH_FIN | TH_RST)
                       and i not in ovl]
            deadline = {}
            if mode == "reorder":
                for i in movable:
                    s = frames[i].seg
                    deadline[i] = len(frames)
                    for j in fl.frames:
                        p = frames[j].seg
                        if j > i and fl.direction(p) != d and p.flags & TH_ACK and \
                                0 < (p.ack - s.seq) % SEQ_MOD < 1 << 31:
                            deadline[i] = j
                            break
            for w in range(0, len(movable), window):
                slots = movable[w:w + window]
                if len(slots) < 2:
                    continue
                best = list(slots)
                for _try in range(30):
                    perm = list(slots)
                    rng.shuffle(perm)
                    if perm == slots:
                        continue
                    if mode == "reorder-wide" or all(slot < deadline[src]
                                                     for slot, src in zip(slots, perm)):
                        best = perm
                        break
                for slot, src in zip(slots, best):
                    if slot != src:
                        moved += 1
                    new[slot] = replace(frames[src], ts=frames[slot].ts)
        report["moved"] = moved
        return new, report
    if mode == "duplicate":
        inserts = {}
        n = 0
        for i, fr in enumerate(frames):
            if _is_data(fr) and rng.random() < prob:
                later = min(len(frames) - 1, i + rng.randint(0, 2))
                inserts.setdefault(later, []).append(replace(fr, ts=frames[later].ts))
                n += 1
        report["duplicated"] = n
        return _insert_after(frames, inserts), report
    if mode == "overlap-identical":
        inserts = {}
        n = 0
        for fl, d, idx in _flow_dirs(frames):
            ovl = _overlapping(frames, fl, d, idx)
            idx = [i for i in idx if i not in ovl]
            if not idx:
                continue
            byseq = sorted(idx, key=lambda i: (frames[i].seg.seq - frames[idx[0]].seg.seq)
                           % SEQ_MOD)
            for a, b in zip(byseq, byseq[1:]):
                sa, sb = frames[a].seg, frames[b].seg
                if (sa.seq + len(sa.payload)) % SEQ_MOD != sb.seq or len(sa.payload) < 2 \
                        or len(sb.payload) < 2 or sb.flags & (TH_FIN | TH_SYN | TH_RST):
                    continue
                h = len(sa.payload) // 2
                x = _clone(frames[a], seq=(sa.seq + h) % SEQ_MOD, flags=TH_ACK | TH_PSH,
                           payload=sa.payload[h:] + sb.payload[:len(sb.payload) // 2])
                # Before b: x brings new bytes and b then overlaps it; after b:
                # x is covered entirely.
                at = b - 1 if rng.random() < 0.5 else b
                inserts.setdefault(at, []).append(replace(x, ts=frames[max(at, 0)].ts))
                n += 1
        report["inserted"] = n
        return _insert_after(frames, inserts), report
    if mode == "overlap-conflict":
        inserts = {}
        conflicts = []
        for fl, d, idx in _flow_dirs(frames):
            ovl = _overlapping(frames, fl, d, idx)
            cand = [i for i in idx if len(frames[i].seg.payload) >= 2 and i not in ovl
                    and not frames[i].seg.flags & (TH_SYN | TH_FIN | TH_RST)]
            if not cand:
                continue
            i = cand[pick % len(cand)] if pick is not None else cand[rng.randrange(len(cand))]
            s = frames[i].seg
            h = len(s.payload) // 2
            bad = bytes(0x58 if c != 0x58 else 0x59 for c in s.payload[h:])   # 'X' or 'Y'
            x = _clone(frames[i], seq=(s.seq + h) % SEQ_MOD, payload=bad)
            inserts.setdefault(i, []).append(x)
            base = _dir_base(frames, fl, d)
            conflicts.append(dict(_flow_json(fl), dir=d,
                                  offset=(s.seq + h - base) % SEQ_MOD, len=len(bad)))
        report["conflicts"] = conflicts
        return _insert_after(frames, inserts), report
    if mode in ("resplit-1", "resplit-random"):
        out = []
        n = 0
        bases = {}
        for fl, d, idx in _flow_dirs(frames):
            for i in idx:
                bases[i] = _dir_base(frames, fl, d)
        for i, fr in enumerate(frames):
            if not _is_data(fr) or fr.seg.flags & (TH_SYN | TH_RST):
                out.append(fr)
                continue
            s = fr.seg
            if max_bytes is not None and bases.get(i) is not None and \
                    (s.seq - bases[i]) % SEQ_MOD >= max_bytes:
                out.append(fr)
                continue
            pos = 0
            L = len(s.payload)
            while pos < L:
                size = 1 if mode == "resplit-1" else rng.randint(1, max(1, min(L, max_piece)))
                size = min(size, L - pos)
                last = pos + size >= L
                fl = s.flags & ~(TH_FIN | TH_PSH) if not last else s.flags
                out.append(_clone(fr, seq=(s.seq + pos) % SEQ_MOD, flags=fl,
                                  payload=s.payload[pos:pos + size]))
                pos += size
                n += 1
        report["segments"] = n
        return out, report
    if mode == "drop-one":
        cands = []
        for fl, d, idx in _flow_dirs(frames):
            base = _dir_base(frames, fl, d)
            if base is None or not idx:
                continue
            ranges = [((frames[i].seg.seq - base) % SEQ_MOD, len(frames[i].seg.payload), i)
                      for i in idx]
            top = max(o + n for o, n, _ in ranges)
            for o, n, i in ranges:
                if frames[i].seg.flags & (TH_SYN | TH_FIN | TH_RST) or o + n >= top or o == 0:
                    continue
                if any(j != i and oo < o + n and o < oo + nn for oo, nn, j in ranges):
                    continue   # another packet carries some of these bytes
                cands.append((fl, d, o, n, i))
        if not cands:
            report["dropped"] = None
            return frames, report
        fl, d, o, n, i = cands[pick % len(cands)] if pick is not None \
            else cands[rng.randrange(len(cands))]
        report["dropped"] = dict(_flow_json(fl), dir=d, offset=o, len=n)
        return frames[:i] + frames[i + 1:], report
    if mode == "midstream":
        drop = set()
        picked = []
        for fl in find_flows(frames):
            hs = [i for i in fl.frames if frames[i].seg.flags & TH_SYN]
            rest = [i for i in fl.frames if i not in hs]
            gone = set(hs) | set(rest[:skip])
            entry = dict(_flow_json(fl))
            for d in ("c2s", "s2c"):
                base = _dir_base(frames, fl, d)
                data = [i for i in fl.frames if _is_data(frames[i])
                        and fl.direction(frames[i].seg) == d]
                offs = {i: (frames[i].seg.seq - base) % SEQ_MOD for i in data} \
                    if base is not None else {}
                left = [offs[i] for i in data if i not in gone]
                entry[d + "_from"] = min(left) if left else None
                # A dropped segment that lies beyond the pick-up point (the
                # original was captured out of order) is kept: the cut must
                # not leave a hole.
                if left:
                    gone -= {i for i in data if i in gone and i not in hs
                             and offs[i] >= min(left)}
            drop |= gone
            picked.append(entry)
        report["skipped"] = skip
        report["flows"] = picked
        return [fr for i, fr in enumerate(frames) if i not in drop], report
    raise ValueError(f"unknown perturbation {mode}")


PERTURBATIONS = ["reorder", "reorder-wide", "duplicate", "overlap-identical",
                 "overlap-conflict", "resplit-1", "resplit-random", "drop-one",
                 "midstream", "none"]


# ----------------------------------------------------------------------------
# IP-level variants

def map_v4_to_v6(addr4):
    return ipaddress.IPv6Address(IPV6_MAP_PREFIX + str(ipaddress.IPv4Address(addr4))).packed


def map_ip_str(s):
    """The IPv6 address that an IPv4 address string becomes in the ipv6 variants."""
    if ":" in s:
        return s
    return str(ipaddress.IPv6Address(map_v4_to_v6(ipaddress.IPv4Address(s).packed)))


def to_ipv6(frames, ext=False):
    out = []
    for fr in frames:
        s = fr.seg
        if s is None or s.truncated:
            if fr.ethertype == ETH_IPV4:
                continue   # non-TCP IPv4 cannot follow; drop it
            out.append(fr)
            continue
        if s.ver == 4:
            s = replace(s, ver=6, src=map_v4_to_v6(s.src), dst=map_v4_to_v6(s.dst),
                        flowlabel=0, tclass=s.tos, ext=[])
        if ext:
            # Hop-by-hop with a PadN option, destination options with a PadN
            # option (RFC 8200 section 4.2); next-header bytes are filled in
            # by encode_ip.
            hbh = bytes([0, 0, 1, 4, 0, 0, 0, 0])
            dst = bytes([0, 0, 1, 4, 0, 0, 0, 0])
            s = replace(s, ext=[(0, hbh), (60, dst)] + list(s.ext))
        out.append(replace(fr, seg=s, ethertype=ETH_IPV6))
    return out


def fragment_ipv4(frames, frag_size=64, ooo=False, seed=1, drop=False):
    """Split every IPv4 TCP datagram longer than frag_size bytes of payload.

    drop: leave out the second fragment of the middle fragmented datagram, so
    that datagram never completes (ipfrag_incomplete, and a gap in its flow)."""
    if drop:
        whole = fragment_ipv4(frames, frag_size, ooo, seed)
        firsts = [i for i, fr in enumerate(whole) if fr.seg is None and fr.l3[:1]
                  and fr.l3[0] >> 4 == 4 and struct.unpack("!H", fr.l3[6:8])[0] == 0x2000]
        if not firsts:
            return whole
        k = firsts[len(firsts) // 2]
        return whole[:k + 1] + whole[k + 2:]
    rng = random.Random(seed)
    out = []
    ident = 0x3000
    n = 0
    for fr in frames:
        s = fr.seg
        if s is None or s.ver != 4 or s.truncated:
            out.append(fr)
            continue
        ident += 1
        s = replace(s, ident=ident, df=False)
        whole = s.encode_ip()
        ihl = (whole[0] & 0x0F) * 4
        body = whole[ihl:]
        if len(body) <= frag_size:
            out.append(replace(fr, seg=s))
            continue
        step = max(8, frag_size // 8 * 8)
        pieces = []
        for o in range(0, len(body), step):
            chunk = body[o:o + step]
            more = o + step < len(body)
            hdr = bytearray(whole[:ihl])
            hdr[2:4] = struct.pack("!H", ihl + len(chunk))
            hdr[6:8] = struct.pack("!H", (0x2000 if more else 0) | (o // 8))
            hdr[10:12] = b"\x00\x00"
            hdr[10:12] = struct.pack("!H", inet_checksum(bytes(hdr)))
            l3 = bytes(hdr) + chunk
            pieces.append(replace(fr, seg=None, l3=l3, l3_origlen=len(l3)))
        if ooo:
            pieces.reverse() if rng.random() < 0.5 else rng.shuffle(pieces)
        out.extend(pieces)
        n += 1
    return out


def set_bad_checksums(frames):
    return [replace(fr, seg=replace(fr.seg, bad_csum=True))
            if fr.seg is not None and not fr.seg.truncated else fr for fr in frames]


VARIANTS = {
    # name: (linktype, tags, frame transform, writer options)
    "ether": (LT_ETHERNET, (), None, {}),
    "vlan": (LT_ETHERNET, ((ETH_VLAN, 100),), None, {}),
    "qinq": (LT_ETHERNET, ((ETH_QINQ, 200), (ETH_VLAN, 100)), None, {}),
    "sll": (LT_SLL, (), None, {}),
    "sll2": (LT_SLL2, (), None, {}),
    "raw": (LT_RAW, (), None, {}),
    "raw12": (LT_RAW12, (), None, {}),
    "null": (LT_NULL, (), None, {}),
    "loop": (LT_LOOP, (), None, {}),
    "ipfrag": (LT_ETHERNET, (), lambda f, o: fragment_ipv4(f, o.get("frag_size", 64)), {}),
    "ipfrag-ooo": (LT_ETHERNET, (), lambda f, o: fragment_ipv4(f, o.get("frag_size", 64),
                                                                 ooo=True,
                                                                 seed=o.get("seed", 1)), {}),
    "ipfrag-drop": (LT_ETHERNET, (), lambda f, o: fragment_ipv4(f, o.get("frag_size", 64),
                                                                  drop=True), {}),
    "ipv6": (LT_ETHERNET, (), lambda f, o: to_ipv6(f), {}),
    "ipv6ext": (LT_ETHERNET, (), lambda f, o: to_ipv6(f, ext=True), {}),
    "snaplen": (LT_ETHERNET, (), None, {"snaplen": 128}),
    "pcapng": (LT_ETHERNET, (), None, {"fmt": "pcapng"}),
    "pcap-nsec": (LT_ETHERNET, (), None, {"nsec": True}),
    "pcap-be": (LT_ETHERNET, (), None, {"big_endian": True}),
    "badsum": (LT_ETHERNET, (), lambda f, o: set_bad_checksums(f), {}),
}


def make_variant(frames, name, **opts):
    """Return (Capture, writer kwargs) for one variant of decoded frames."""
    linktype, tags, fn, wopts = VARIANTS[name]
    wopts = dict(wopts)
    if name == "snaplen" and opts.get("snaplen"):
        wopts["snaplen"] = opts["snaplen"]
    if fn is not None:
        frames = fn(frames, opts)
    cap = encode_frames(frames, linktype, tags)
    if "snaplen" in wopts:
        cap.snaplen = wopts["snaplen"]
    return cap, wopts


def write_variant(path, frames, name, **opts):
    cap, wopts = make_variant(frames, name, **opts)
    write_capture(path, cap, **wopts)
    return cap


# ----------------------------------------------------------------------------
# Synthetic SMTP session

def synth_frames(ipv6=False, sessions=1, seed=7, mss=536):
    """Frames of one or more complete SMTP-like sessions (handshake ... FIN).

    Each direction carries a few KB; the message body and a long reply are sent
    in flights of several segments before the peer ACKs them, so reordering has
    something to work on."""
    rng = random.Random(seed)
    t0 = 1_700_000_000 * 1_000_000_000
    all_frames = []
    for k in range(sessions):
        if ipv6:
            cip = ipaddress.IPv6Address(f"2001:db8:1::{10 + k:x}").packed
            sip = ipaddress.IPv6Address("2001:db8:2::25").packed
        else:
            cip = ipaddress.IPv4Address(f"192.0.2.{10 + k}").packed
            sip = ipaddress.IPv4Address("198.51.100.25").packed
        cport, sport = 49152 + 17 * k + 3, 25
        cmac, smac = b"\x02\x00\x00\x00\x01" + bytes([k]), b"\x02\x00\x00\x00\x02\x01"
        cseq, sseq = rng.randrange(SEQ_MOD), rng.randrange(SEQ_MOD)
        if k == 0:
            cseq = SEQ_MOD - 1000   # exercise sequence number wrap-around
        st = {"c": cseq, "s": sseq, "t": t0 + k * 3_000_000, "id": {"c": 100, "s": 5000}}
        frames = []

        def emit(who, flags, payload=b""):
            fwd = who == "c"
            seq = st["c"] if fwd else st["s"]
            ack = st["s"] if fwd else st["c"]
            st["id"][who] += 1
            s = Seg(ver=6 if ipv6 else 4, src=cip if fwd else sip, dst=sip if fwd else cip,
                    sport=cport if fwd else sport, dport=sport if fwd else cport,
                    seq=seq % SEQ_MOD, ack=ack % SEQ_MOD if flags & TH_ACK else 0,
                    flags=flags, win=65535, payload=payload, ident=st["id"][who],
                    options=b"\x02\x04\x05\xb4" if flags & TH_SYN else b"")
            st["t"] += 250_000
            frames.append(Frame(ts=st["t"], src_mac=cmac if fwd else smac,
                                dst_mac=smac if fwd else cmac,
                                ethertype=ETH_IPV6 if ipv6 else ETH_IPV4, seg=s,
                                pkt_type=4 if fwd else 0))
            adv = len(payload) + (1 if flags & (TH_SYN | TH_FIN) else 0)
            if fwd:
                st["c"] += adv
            else:
                st["s"] += adv

        def send(who, text):
            data = text.encode()
            for o in range(0, len(data), mss):
                emit(who, TH_ACK | TH_PSH, data[o:o + mss])
                # the peer ACKs every fourth segment and at the end
                if (o // mss) % 4 == 3 or o + mss >= len(data):
                    emit("s" if who == "c" else "c", TH_ACK)

        emit("c", TH_SYN)
        emit("s", TH_SYN | TH_ACK)
        emit("c", TH_ACK)
        send("s", "220 mx.example.test ESMTP mailtap-synth ready\r\n")
        send("c", f"EHLO client{k}.example.test\r\n")
        send("s", "250-mx.example.test greets you\r\n" + "".join(
            f"250-X-EXTENSION-{i:03d} parameter-{'abcdefgh' * 4}\r\n" for i in range(40))
            + "250 SMTPUTF8\r\n")
        send("c", "HELP\r\n")
        send("s", "".join(f"214-Line {i} of the help text, {'0123456789' * 5}\r\n"
                          for i in range(30)) + "214 End of HELP\r\n")
        send("c", "MAIL FROM:<alice@example.test>\r\n")
        send("s", "250 2.1.0 Ok\r\n")
        send("c", "RCPT TO:<bob@example.test>\r\n")
        send("s", "250 2.1.5 Ok\r\n")
        send("c", "DATA\r\n")
        send("s", "354 End data with <CR><LF>.<CR><LF>\r\n")
        body = (f"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
                f"Subject: synthetic message {k}\r\nMessage-ID: <synth{k}@example.test>\r\n\r\n")
        body += "".join(f"Line {i:04d} of the body: {'The quick brown fox. ' * 3}\r\n"
                        for i in range(80))
        send("c", body + ".\r\n")
        send("s", "250 2.0.0 Ok: queued as SYNTH\r\n")
        send("c", "QUIT\r\n")
        send("s", "221 2.0.0 Bye\r\n")
        emit("s", TH_FIN | TH_ACK)
        emit("c", TH_FIN | TH_ACK)
        emit("s", TH_ACK)
        all_frames.append(frames)
    # Interleave sessions by timestamp.
    merged = sorted((fr for fs in all_frames for fr in fs), key=lambda f: f.ts)
    return merged


def synth_capture(ipv6=False, sessions=1, seed=7):
    return encode_frames(synth_frames(ipv6, sessions, seed), LT_ETHERNET)


# ----------------------------------------------------------------------------
# Running mailtap and comparing its output (shared by the test scripts)

@dataclass
class MailtapRun:
    rc: int
    sessions: list            # "session" objects in output order
    events: list              # every JSON object
    streams: dict             # session id -> {"c2s": bytes, "s2c": bytes}
    stderr: str
    bad_lines: list           # stdout lines that are not JSON objects
    cmd: list


def run_mailtap(mailtap, pcaps, outdir, timeout=300, extra=()):
    import subprocess
    os.makedirs(outdir, exist_ok=True)
    cmd = [mailtap]
    for pth in ([pcaps] if isinstance(pcaps, str) else pcaps):
        cmd += ["-r", pth]
    cmd += ["--json", "--write-streams", outdir] + list(extra)
    try:
        pr = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout)
        rc, out, err = pr.returncode, pr.stdout, pr.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        rc, out, err = -999, e.stdout or b"", f"timeout after {timeout}s"
    except OSError as e:   # e.g. the binary is being rebuilt
        rc, out, err = -998, b"", f"cannot run {mailtap}: {e}"
    events, bad = [], []
    for line in out.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad.append(line[:200])
            continue
        if isinstance(obj, dict):
            events.append(obj)
        else:
            bad.append(line[:200])
    sessions = [e for e in events if e.get("type") == "session"]
    streams = {}
    for sess in sessions:
        sid = sess.get("session")
        st = {}
        for d in ("c2s", "s2c"):
            fp = os.path.join(outdir, f"{sid}-{d}.bin")
            st[d] = open(fp, "rb").read() if os.path.exists(fp) else None
        streams[sid] = st
    return MailtapRun(rc, sessions, events, streams, err, bad, cmd)


def norm_ip(s):
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        return str(s)


def session_key(sess):
    """((client ip, port), (server ip, port)) of a mailtap session object."""
    try:
        c, s = sess["client"], sess["server"]
        return (norm_ip(c["ip"]), int(c["port"])), (norm_ip(s["ip"]), int(s["port"]))
    except (KeyError, TypeError, ValueError):
        return None


def match_sessions(flow_keys, sessions, map6=False):
    """Pair each expected (client, server) key with a mailtap session.

    Returns [(key, session or None, swapped)] in the order of flow_keys; a
    key that occurs twice is paired with sessions in start order."""
    pool = {}
    for sess in sessions:
        k = session_key(sess)
        if k is not None:
            pool.setdefault(k, []).append(sess)
    out = []
    for key in flow_keys:
        c, s = key
        if map6:
            c, s = (map_ip_str(c[0]), c[1]), (map_ip_str(s[0]), s[1])
        c, s = (norm_ip(c[0]), c[1]), (norm_ip(s[0]), s[1])
        if pool.get((c, s)):
            out.append((key, pool[(c, s)].pop(0), False))
        elif pool.get((s, c)):
            out.append((key, pool[(s, c)].pop(0), True))
        else:
            out.append((key, None, False))
    return out


def session_gaps(sess):
    out = []
    for g in sess.get("gaps") or []:
        try:
            out.append((g["dir"], int(g["offset"]), int(g["len"])))
        except (KeyError, TypeError, ValueError):
            out.append(("?", -1, -1))
    return sorted(out)


def describe_diff(want, got):
    """One line saying where two byte strings first differ."""
    if got is None:
        return f"stream file missing (want {len(want)} bytes)"
    n = min(len(want), len(got))
    k = next((i for i in range(n) if want[i] != got[i]), n)
    return (f"want {len(want)} bytes, got {len(got)}; first difference at {k}: "
            f"want {want[k:k + 24]!r} got {got[k:k + 24]!r}")


def check_session(sess, streams, want_c2s, want_s2c, want_gaps, label=""):
    """Compare one mailtap session with expected data and gaps; return errors."""
    errs = []
    sid = sess.get("session")
    for d, want in (("c2s", want_c2s), ("s2c", want_s2c)):
        got = (streams.get(sid) or {}).get(d)
        if got is None and want == b"":
            got = b""
        if got != want:
            errs.append(f"{label}session {sid} {d}: {describe_diff(want, got)}")
        nbytes = sess.get(f"{d}_bytes")
        dgap = sum(g[2] for g in want_gaps if g[0] == d)
        if nbytes not in (len(want), len(want) + dgap):
            errs.append(f"{label}session {sid} {d}_bytes={nbytes}, want {len(want)}")
    gaps = session_gaps(sess)
    count = sess.get("gap_count")
    if isinstance(count, int) and len(gaps) < count:
        # The JSON lists only the first gaps (a cap); gap_count has them all.
        if count != len(want_gaps) or not set(gaps) <= set(want_gaps):
            errs.append(f"{label}session {sid} gap_count={count} gaps {gaps}, "
                        f"want {len(want_gaps)}: {sorted(want_gaps)}")
    elif gaps != sorted(want_gaps):
        errs.append(f"{label}session {sid} gaps {gaps}, want {sorted(want_gaps)}")
    gb = sess.get("gap_bytes")
    if gb != sum(g[2] for g in want_gaps):
        errs.append(f"{label}session {sid} gap_bytes={gb}, want {sum(g[2] for g in want_gaps)}")
    return errs


def flow_gaps(fs):
    return [("c2s", o, n) for o, n in fs.c2s.gaps] + [("s2c", o, n) for o, n in fs.s2c.gaps]


# ----------------------------------------------------------------------------
# Self-test: the tool against itself and against tcpflow

def _streams_by_tuple(flows, map6=False):
    out = {}
    for f in flows:
        c = (map_ip_str(f.client[0]) if map6 else f.client[0], f.client[1])
        s = (map_ip_str(f.server[0]) if map6 else f.server[0], f.server[1])
        out[(c, s)] = (f.c2s.data, f.c2s.gaps, f.s2c.data, f.s2c.gaps)
    return out


def tcpflow_streams(path, workdir, parts=False):
    """Run tcpflow on path; return {(src ip, src port, dst ip, dst port): bytes}.

    tcpflow starts a new file (suffix c1, c2, ...) when a 4-tuple is seen again
    after a FIN; the files are concatenated, or with parts=True returned as a
    list in tcpflow's order."""
    import subprocess
    import xml.etree.ElementTree as ET
    os.makedirs(workdir, exist_ok=True)
    subprocess.run(["tcpflow", "-r", path, "-o", workdir], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    rep = os.path.join(workdir, "report.xml")
    if not os.path.exists(rep):
        return out
    for fo in ET.parse(rep).getroot().iter("fileobject"):
        fn = fo.findtext("filename")
        tf = fo.find("tcpflow")
        if fn is None or tf is None:
            continue
        a = tf.attrib
        key = (str(ipaddress.ip_address(a["src_ipn"])), int(a["srcport"]),
               str(ipaddress.ip_address(a["dst_ipn"])), int(a["dstport"]))
        fpath = fn if os.path.isabs(fn) else os.path.join(workdir, os.path.basename(fn))
        if not os.path.exists(fpath):
            fpath = os.path.join(workdir, os.path.basename(fn))
        data = b""
        if os.path.exists(fpath):
            with open(fpath, "rb") as fh:
                data = fh.read()
        out.setdefault(key, []).append(data)
    if parts:
        return out
    return {k: b"".join(v) for k, v in out.items()}


# The synthetic captures the reassembly and link-layer suites add to the
# samples: IPv4 with a sequence-number wrap, IPv6, two interleaved sessions.
SYNTHETIC = [("synth-smtp.pcap", {}), ("synth-smtp-ipv6.pcap", {"ipv6": True}),
             ("synth-smtp-2sessions.pcap", {"sessions": 2})]


def suite_inputs(samples_dir, tmp):
    """The samples (*.pcap, *.pcapng) and the SYNTHETIC captures, written
    into tmp.  Returns (paths, {synthetic path: the command that remakes it})."""
    tool = os.path.relpath(os.path.abspath(__file__))
    samples = sorted(glob.glob(os.path.join(samples_dir, "*.pcap")) +
                     glob.glob(os.path.join(samples_dir, "*.pcapng")))
    synth_cmds = {}
    for name, kw in SYNTHETIC:
        path = os.path.join(tmp, name)
        write_capture(path, synth_capture(**kw))
        samples.append(path)
        synth_cmds[path] = (f"python3 {tool} synth {name}" +
                            "".join(f" --{k} {v}" if v is not True else f" --{k}"
                                    for k, v in kw.items()))
    return samples, synth_cmds


def selftest(inputs, use_tcpflow=True, workdir=None):
    """Check that lossless perturbations and variants keep the expected streams."""
    import tempfile
    failures = []
    tmp = tempfile.mkdtemp(prefix="pcaptool-selftest-") if workdir is None else workdir
    lossless = ["none", "reorder", "reorder-wide", "duplicate", "overlap-identical",
                "resplit-1", "resplit-random", "overlap-conflict"]
    same_variants = [v for v in VARIANTS if v not in ("snaplen", "ipfrag-drop")]
    for src in inputs:
        name = os.path.basename(src)
        cap = read_capture(src)
        frames = decode_capture(cap)
        ref = _streams_by_tuple(expected_streams(frames))
        for mode in lossless:
            pf, rep = perturb(frames, mode, seed=3, max_bytes=4096)
            out = os.path.join(tmp, f"{name}.{mode}.pcap")
            write_capture(out, encode_frames(pf, cap.linktype))
            got = _streams_by_tuple(expected_streams(read_capture(out)))
            if got != ref:
                failures.append(f"{name} {mode}: expected streams changed")
            if mode == "overlap-conflict":
                fl = expected_streams(read_capture(out))
                if rep["conflicts"] and not any(f.c2s.conflicts or f.s2c.conflicts for f in fl):
                    failures.append(f"{name} {mode}: no conflict seen")
            if use_tcpflow and mode not in ("overlap-conflict",):
                tfs = tcpflow_streams(out, os.path.join(tmp, f"tf-{name}-{mode}"))
                for (c, s), (c2s, g1, s2c, g2) in ref.items():
                    if g1 or g2:
                        continue
                    for key, want in (((c[0], c[1], s[0], s[1]), c2s),
                                      ((s[0], s[1], c[0], c[1]), s2c)):
                        if want and tfs.get(key) != want:
                            failures.append(f"{name} {mode}: tcpflow differs on {key} "
                                            f"({len(tfs.get(key) or b'')} vs {len(want)})")
        for v in same_variants:
            out = os.path.join(tmp, f"{name}.{v}.pcap")
            write_variant(out, frames, v)
            got = _streams_by_tuple(expected_streams(read_capture(out)))
            want = _streams_by_tuple(expected_streams(frames), map6=v.startswith("ipv6"))
            if got != want:
                failures.append(f"{name} {v}: expected streams changed")
        # drop-one: the gap is where the report says.
        pf, rep = perturb(frames, "drop-one", seed=5)
        if rep["dropped"]:
            d = rep["dropped"]
            fl = expected_streams(pf)
            hit = [getattr(f, d["dir"]).gaps for f in fl
                   if f.client == (d["client"]["ip"], d["client"]["port"])]
            if hit != [[(d["offset"], d["len"])]]:
                failures.append(f"{name} drop-one: gaps {hit} != {d}")
        # snaplen: every truncated byte is a gap, delivered + gaps = original length.
        out = os.path.join(tmp, f"{name}.snaplen.pcap")
        write_variant(out, frames, "snaplen")
        for f in expected_streams(read_capture(out)):
            key = (f.client, f.server)
            if key not in ref:
                failures.append(f"{name} snaplen: flow {key} missing")
                continue
            for dname, k in (("c2s", 0), ("s2c", 2)):
                st = getattr(f, dname)
                if len(st.data) + sum(g[1] for g in st.gaps) != len(ref[key][k]):
                    failures.append(f"{name} snaplen {dname}: lengths do not add up")
    for fmsg in failures:
        print("FAIL", fmsg)
    print(f"selftest: {len(failures)} failures" + (f" (files kept in {tmp})" if failures else ""))
    if not failures and workdir is None:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


def _cmd_selftest(a):
    import shutil
    import tempfile
    inputs = list(a.inputs)
    tmp = None
    if not inputs:
        tmp = tempfile.mkdtemp(prefix="pcaptool-synth-")
        for name, kw in (("synth.pcap", {}), ("synth6.pcap", {"ipv6": True}),
                         ("synth2.pcap", {"sessions": 2})):
            write_capture(os.path.join(tmp, name), synth_capture(**kw))
            inputs.append(os.path.join(tmp, name))
    rc = selftest(inputs, use_tcpflow=not a.no_tcpflow)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)


# ----------------------------------------------------------------------------
# Command line

def _cmd_synth(a):
    cap = synth_capture(a.ipv6, a.sessions, a.seed)
    write_capture(a.out, cap)


def _cmd_perturb(a):
    cap = read_capture(a.input)
    frames = decode_capture(cap)
    frames, rep = perturb(frames, a.mode, seed=a.seed, window=a.window, prob=a.prob,
                          skip=a.skip, max_bytes=a.max_bytes, max_piece=a.max_piece,
                          pick=a.pick)
    if a.bad_checksum:
        frames = set_bad_checksums(frames)
    out = encode_frames(frames, LT_ETHERNET if cap.linktype not in (
        LT_NULL, LT_LOOP, LT_RAW, LT_RAW12, LT_SLL, LT_SLL2) else cap.linktype)
    write_capture(a.output, out, nsec=cap.nsec, big_endian=cap.big_endian)
    text = json.dumps(rep, indent=1)
    if a.report:
        with open(a.report, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


def _cmd_encap(a):
    cap = read_capture(a.input)
    frames = decode_capture(cap)
    opts = {"seed": a.seed, "frag_size": a.frag_size}
    if a.snaplen:
        opts["snaplen"] = a.snaplen
    write_variant(a.output, frames, a.to, **opts)


def _cmd_expected(a):
    flows = expected_streams(read_capture(a.input))
    out = []
    for n, f in enumerate(flows):
        j = f.to_json()
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            for d in ("c2s", "s2c"):
                with open(os.path.join(a.out, f"{n}-{d}.bin"), "wb") as fh:
                    fh.write(getattr(f, d).data)
        out.append(j)
    for j in out:
        print(json.dumps(j))


def _cmd_dump(a):
    cap = read_capture(a.input)
    print(f"# linktype {cap.linktype} snaplen {cap.snaplen} packets {len(cap.packets)} "
          f"{cap.fmt}{' nsec' if cap.nsec else ''}{' big-endian' if cap.big_endian else ''}")
    for n, fr in enumerate(decode_capture(cap)):
        s = fr.seg
        if s is None:
            print(f"{n} {fr.ts} ethertype=0x{fr.ethertype:04x} len={len(fr.l3)} (not TCP)")
            continue
        (a1, p1), (a2, p2) = s.endpoints()
        fl = "".join(c for c, b in zip("FSRPAU", (1, 2, 4, 8, 16, 32)) if s.flags & b)
        print(f"{n} {fr.ts} {a1}:{p1} > {a2}:{p2} [{fl}] seq={s.seq} ack={s.ack} "
              f"len={s.plen}{' truncated' if s.truncated else ''}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("synth", help="write a synthetic SMTP capture")
    p.add_argument("out")
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(fn=_cmd_synth)
    p = sub.add_parser("perturb", help="perturb the TCP data segments of every flow")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--mode", required=True, choices=PERTURBATIONS)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--window", type=int, default=4, help="reorder window (segments)")
    p.add_argument("--prob", type=float, default=1.0, help="duplicate probability")
    p.add_argument("--skip", type=int, default=3, help="midstream: packets dropped after SYNs")
    p.add_argument("--max-bytes", type=int, help="resplit: only the first N bytes of a stream")
    p.add_argument("--max-piece", type=int, default=64, help="resplit-random: largest piece")
    p.add_argument("--pick", type=int, help="drop-one/overlap-conflict: candidate index")
    p.add_argument("--bad-checksum", action="store_true", help="leave TCP checksums wrong")
    p.add_argument("--report", help="write the JSON report here instead of stdout")
    p.set_defaults(fn=_cmd_perturb)
    p = sub.add_parser("encap", help="re-encapsulate or rewrite a capture")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--to", required=True, choices=sorted(VARIANTS))
    p.add_argument("--snaplen", type=int)
    p.add_argument("--frag-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(fn=_cmd_encap)
    p = sub.add_parser("expected", help="print the expected reassembled streams")
    p.add_argument("input")
    p.add_argument("--out", help="also write <n>-c2s.bin / <n>-s2c.bin here")
    p.set_defaults(fn=_cmd_expected)
    p = sub.add_parser("dump", help="one line per packet")
    p.add_argument("input")
    p.set_defaults(fn=_cmd_dump)
    p = sub.add_parser("selftest", help="check the tool itself (and against tcpflow)")
    p.add_argument("inputs", nargs="*", help="captures (default: synthetic ones)")
    p.add_argument("--no-tcpflow", action="store_true")
    p.set_defaults(fn=_cmd_selftest)
    a = ap.parse_args(argv)
    a.fn(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
