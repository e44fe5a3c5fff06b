#!/usr/bin/env python3
"""bench/gen.py makes the benchmark's captures: they must be what the
benchmark says they are.

- The same arguments give the same bytes; another seed gives other bytes.
- Every IPv4 header checksum and every TCP checksum (IPv4 and IPv6
  pseudo-headers) is valid, so checksum-checking tools (libnids under
  dsniff and mailsnarf) see the traffic.
- mailtap finds exactly the ground truth that gen.py writes beside the
  capture (sessions, messages, credentials) in the mixed, short and large
  profiles, with one worker and with two.

Small captures (a few MB): the timing itself is the benchmark's business,
never a test's.

    test_gen.py --mailtap build/mailtap
"""

import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(ROOT, "bench", "gen.py")

failures = 0


def check(ok, what):
    global failures
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures += 1


def gen(out, *args):
    subprocess.run([sys.executable, GEN, *args, "--out", out], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def bad_checksums(path):
    """(packets, packets with a wrong IPv4 or TCP checksum); Ethernet frames."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic == 0xA1B2C3D4, "little-endian microsecond pcap expected"
    assert struct.unpack("<I", data[20:24])[0] == 1, "Ethernet expected"
    off, n, bad = 24, 0, 0
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        etype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        if etype == 0x0800:
            ihl = (ip[0] & 15) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            if csum(ip[:ihl]) != 0xFFFF:
                bad += 1
                continue
            seg = ip[ihl:total]
            pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(seg))
        elif etype == 0x86DD:
            plen = struct.unpack("!H", ip[4:6])[0]
            assert ip[6] == 6, "no extension headers expected"
            seg = ip[40:40 + plen]
            pseudo = ip[8:40] + struct.pack("!IxxxB", len(seg), 6)
        else:
            bad += 1
            continue
        if csum(pseudo + seg) != 0xFFFF:
            bad += 1
    return n, bad


def found(mailtap, pcap, workers):
    out = subprocess.run([mailtap, "-q", "--json", "--workers", str(workers), "-r", pcap],
                         check=True, capture_output=True, text=True).stdout
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary"
    return (sessions_by_proto(summary["sessions"]), summary["messages"]["total"],
            summary["credentials"]["total"])


def sessions_by_proto(d):
    return tuple(d.get(k, 0) for k in ("total", "smtp", "pop3", "imap"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        a, b, c = (os.path.join(tmp, d) for d in "abc")
        gen(a, "mixed", "--size", "3M")
        gen(b, "mixed", "--size", "3M")
        gen(c, "mixed", "--size", "3M", "--seed", "8")
        pa, pb, pc = (os.path.join(d, "mixed-3M.pcap") for d in (a, b, c))
        check(sha256(pa) == sha256(pb), "mixed: the same arguments give the same bytes")
        check(sha256(pa) != sha256(pc), "mixed: another seed gives other bytes")

        gen(a, "short", "--sessions", "300", "--concurrency", "50")
        gen(a, "large", "--size", "12M")
        for name in ("mixed-3M", "short-300", "large-12M"):
            pcap = os.path.join(a, name + ".pcap")
            with open(os.path.join(a, name + ".json")) as f:
                truth = json.load(f)
            n, bad = bad_checksums(pcap)
            check(n == truth["packets"] and bad == 0,
                  f"{name}: {n} packets, every IPv4 and TCP checksum valid ({bad} bad)")
            want = (sessions_by_proto(truth["sessions"]), truth["messages"],
                    truth["credentials"])
            check(want[0][0] > 0 and want[1] > 0, f"{name}: ground truth {want}")
            for workers in (1, 2):
                got = found(args.mailtap, pcap, workers)
                check(got == want, f"{name}: mailtap --workers {workers} finds {got}, "
                                   f"ground truth {want}")
        with open(os.path.join(a, "short-300.json")) as f:
            check(json.load(f)["sessions"]["total"] == 300,
                  "short: --sessions 300 gives 300 sessions")

    print(f"{failures} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
