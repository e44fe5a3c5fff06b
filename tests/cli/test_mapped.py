#!/usr/bin/env python3
"""Classic pcap files are read through a window of the file (capture/source.c,
win_next: one reused buffer filled with pread, mapped with mmap until the
change measured in bench/README.md), not libpcap's copy of each record;
MAILTAP_NO_MMAP=1 reads them through libpcap.
Both must give exactly the same: standard output, standard error and exit
code, and the same -w copy, on

- every sample, every ../shared/corpus capture (when present) and a
  generated mixed capture larger than the window;
- nanosecond time stamps, a file snaplen smaller than its records (cut to
  it, as libpcap cuts them), an empty file (header only), and a -f filter
  with -w;
- damaged files: a record header cut short, a record's data cut short, a
  caplen libpcap rejects (error naming the file and the record's offset,
  everything before it analyzed);
- retransmissions compared with bytes first seen in windows since refilled
  (the retransmission check refers to the window's bytes rather than
  copying them, reassembly/reasm.c): one altered copy found, one intact one
  not.

It also checks that the window is really used by default: a file cut
short by another program while it is read gives exit 2 and the window's
own message ("shrank while it was being read", naming the file), and
never that message with MAILTAP_NO_MMAP=1.

  test_mapped.py --mailtap BIN --samples DIR [--corpus DIR]
"""
import argparse
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "..", "bench", "gen.py")
FAILS = []
PASSES = [0]
MAILTAP = None


def check(cond, what):
    if cond:
        PASSES[0] += 1
    else:
        FAILS.append(what)
        print("FAIL", what)


def env_for(mapped):
    """The environment that reads through the window, or through libpcap."""
    env = dict(os.environ)
    env.pop("MAILTAP_NO_MMAP", None)
    if not mapped:
        env["MAILTAP_NO_MMAP"] = "1"
    return env


def wait_reading(p, nbytes):
    """Polls /proc/PID/io until p has read nbytes or ends; whether it had."""
    while p.poll() is None:
        try:
            for ln in open("/proc/%d/io" % p.pid):
                if ln.startswith("rchar:") and int(ln.split()[1]) >= nbytes:
                    return True
        except OSError:
            pass
        time.sleep(0.001)
    return False


def run(args, mapped, wfile=None):
    a = [MAILTAP] + args
    if wfile:
        a += ["-w", wfile]
    r = subprocess.run(a, capture_output=True, env=env_for(mapped), timeout=300)
    return r.stdout, r.stderr, r.returncode, open(wfile, "rb").read() if wfile else None


def compare(name, pcap, args=("--json",), tmp=None, want_rc=None):
    res = {}
    for mapped in (True, False):
        w = os.path.join(tmp, "w-%d.pcap" % mapped) if tmp else None
        res[mapped] = run(list(args) + ["-r", pcap], mapped, w)
    same = res[True] == res[False]
    if not same:
        for i, what in enumerate(("stdout", "stderr", "exit code", "-w copy")):
            if res[True][i] != res[False][i]:
                print("  %s differs: window %r... libpcap %r..." % (what, res[True][i][:200] if res[True][i] else res[True][i],
                                                                     res[False][i][:200] if res[False][i] else res[False][i]))
    check(same, "%s %s: window and libpcap agree" % (name, " ".join(args)))
    if want_rc is not None:
        check(res[True][2] == want_rc, "%s: exit %d (%d)" % (name, want_rc, res[True][2]))
    return res[True]


def records(data):
    """(offset, caplen) of each record of a little-endian classic pcap."""
    out, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        out.append((off, caplen))
        off += 16 + caplen
    return out


def variants(sample, tmp):
    """Edge cases made from one little-endian microsecond sample."""
    data = open(sample, "rb").read()
    assert struct.unpack_from("<I", data, 0)[0] == 0xA1B2C3D4, sample
    recs = records(data)
    out = {}
    # nanosecond time stamps: the same instants
    ns = bytearray(data)
    struct.pack_into("<I", ns, 0, 0xA1B23C4D)
    for off, _ in recs:
        usec = struct.unpack_from("<I", ns, off + 4)[0]
        struct.pack_into("<I", ns, off + 4, usec * 1000 + 999)
    out["nsec"] = (bytes(ns), 0)
    # a file snaplen below its records' caplen: libpcap cuts them to it
    small = bytearray(data)
    struct.pack_into("<I", small, 16, 80)
    out["snaplen-80"] = (bytes(small), 0)
    out["header-only"] = (data[:24], 0)
    # time stamps past 2038 (the seconds' top bit set) and a negative
    # microsecond field: read as libpcap reads them
    late = bytearray(data)
    for i, (off, _) in enumerate(recs):
        struct.pack_into("<I", late, off, 0x80000000 + i)
    struct.pack_into("<i", late, recs[0][0] + 4, -5)
    out["after-2038"] = (bytes(late), 0)
    # a record longer than the file's snaplen, cut inside the snaplen's
    # bytes and after them
    cut_small = bytearray(small[:recs[-1][0] + 16 + 40])
    out["snaplen-80-cut-inside"] = (bytes(cut_small), 2)
    if recs[-1][1] > 100:
        out["snaplen-80-cut-after"] = (bytes(small[:recs[-1][0] + 16 + 100]), 2)
    last_off, last_len = recs[-1]
    out["cut-record-header"] = (data[:last_off + 7], 2)
    out["cut-record-data"] = (data[:last_off + 16 + last_len // 2], 2)
    absurd = bytearray(data)
    mid = recs[len(recs) // 2][0]
    struct.pack_into("<I", absurd, mid + 8, 0x00100000)
    out["caplen-too-large"] = (bytes(absurd), 2)
    paths = {}
    for k, (b, rc) in out.items():
        p = os.path.join(tmp, "%s-%s.pcap" % (os.path.basename(sample)[:-5], k))
        open(p, "wb").write(b)
        paths[k] = (p, rc, mid if k == "caplen-too-large" else last_off)
    return paths


def retransmissions_capture(path):
    """An SMTP session whose client sends a message the server leaves
    unacknowledged while another session moves more than 3 MiB through the
    capture (the window moves on meanwhile), then retransmits two of its
    segments: one with a byte altered (overlap_conflict), one intact.  The
    retransmission check must compare them with the bytes first seen,
    whose window's buffer has been refilled many times since."""
    sys.path.insert(0, os.path.join(HERE, "..", "tools"))
    import pcaptool as pt
    frames = []
    t = [1_700_000_000 * 1_000_000_000]

    def flow(k, sport):
        cip, sip = bytes([192, 0, 2, 10 + k]), bytes([198, 51, 100, 25])
        st = {"c": 1000 + k * 100000, "s": 9000 + k * 100000}

        def emit(who, flags, payload=b"", seq=None):
            fwd = who == "c"
            sq = st["c" if fwd else "s"] if seq is None else seq
            ack = st["s" if fwd else "c"]
            sg = pt.Seg(ver=4, src=cip if fwd else sip, dst=sip if fwd else cip,
                        sport=sport if fwd else 25, dport=25 if fwd else sport, seq=sq,
                        ack=ack if flags & pt.TH_ACK else 0, flags=flags, win=65535,
                        payload=payload)
            t[0] += 10_000
            frames.append(pt.Frame(ts=t[0], ethertype=pt.ETH_IPV4, seg=sg))
            if seq is None:
                st["c" if fwd else "s"] += len(payload) + (1 if flags & (pt.TH_SYN | pt.TH_FIN) else 0)
            return sq
        emit.st = st
        return emit

    a, b = flow(0, 40000), flow(1, 40001)
    for f in (a, b):
        f("c", pt.TH_SYN)
        f("s", pt.TH_SYN | pt.TH_ACK)
        f("c", pt.TH_ACK)
        f("s", pt.TH_ACK | pt.TH_PSH, b"220 mx ready\r\n")
        f("c", pt.TH_ACK | pt.TH_PSH, b"EHLO c\r\n")
        f("s", pt.TH_ACK | pt.TH_PSH, b"250 mx\r\n")
        f("c", pt.TH_ACK | pt.TH_PSH, b"MAIL FROM:<a@example.test>\r\n")
        f("s", pt.TH_ACK | pt.TH_PSH, b"250 ok\r\n")
        f("c", pt.TH_ACK | pt.TH_PSH, b"RCPT TO:<b@example.test>\r\n")
        f("s", pt.TH_ACK | pt.TH_PSH, b"250 ok\r\n")
        f("c", pt.TH_ACK | pt.TH_PSH, b"DATA\r\n")
        f("s", pt.TH_ACK | pt.TH_PSH, b"354 go ahead\r\n")
    # session a: 8 segments of a message, not acknowledged
    segs = []
    for i in range(8):
        data = b"".join(b"Line %d.%02d of the first message, in segment %d\r\n" % (i, j, i)
                        for j in range(20))
        segs.append((a("c", pt.TH_ACK | pt.TH_PSH, data), data))
    # session b: 3.5 MB of a message, acknowledged as it goes
    line = b"x" * 998 + b"\r\n"
    for i in range(3300):
        b("c", pt.TH_ACK | pt.TH_PSH, line)
        if i % 4 == 3:
            b("s", pt.TH_ACK)
    # a's retransmissions: segment 2 with one byte altered, segment 5 intact
    seq2, d2 = segs[2]
    a("c", pt.TH_ACK | pt.TH_PSH, d2[:30] + b"#" + d2[31:], seq=seq2)
    seq5, d5 = segs[5]
    a("c", pt.TH_ACK | pt.TH_PSH, d5, seq=seq5)
    for f in (a, b):
        f("c", pt.TH_ACK | pt.TH_PSH, b"last line\r\n.\r\n")
        f("s", pt.TH_ACK | pt.TH_PSH, b"250 queued\r\n")
        f("c", pt.TH_ACK | pt.TH_PSH, b"QUIT\r\n")
        f("s", pt.TH_ACK | pt.TH_PSH, b"221 bye\r\n")
        f("c", pt.TH_FIN | pt.TH_ACK)
        f("s", pt.TH_FIN | pt.TH_ACK)
        f("c", pt.TH_ACK)
    pt.write_capture(path, pt.encode_frames(frames, 1), fmt="pcap", nsec=False)


def check_retransmissions(tmp):
    """Retransmissions compared with bytes of windows since refilled: the
    window and libpcap's copies agree, and find the one altered copy."""
    path = os.path.join(tmp, "retransmitted-late.pcap")
    retransmissions_capture(path)
    check(os.path.getsize(path) > 3 * 1024 * 1024, "the retransmission capture spans windows")
    out, _err, code, _ = compare("late retransmissions", path)
    check(code == 0, "late retransmissions: exit 0 (%d)" % code)
    conflicts = {}
    for ln in out.decode().splitlines():
        ev = json.loads(ln)
        if ev.get("type") == "session":
            conflicts[ev["client"]["port"]] = ev["anomalies"].get("overlap_conflict", 0)
    check(conflicts == {40000: 1, 40001: 0},
          "one overlap_conflict, in the session that altered a byte: %r" % conflicts)


def check_shrink(tmp):
    """Truncates a capture while mailtap reads it, through the window and
    through libpcap (MAILTAP_NO_MMAP=1)."""
    for mapped in (True, False):
        r = subprocess.run([sys.executable, GEN, "mixed", "--out", tmp, "--seed", "9", "--size", "40M"],
                           capture_output=True)
        pcap = os.path.join(tmp, "mixed-40M.pcap")
        check(r.returncode == 0, "gen.py 40M")
        xdir = os.path.join(tmp, "x-shrink")
        p = subprocess.Popen([MAILTAP, "-q", "--json", "-x", xdir, "-r", pcap],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env_for(mapped))
        reading = wait_reading(p, 3 << 20)
        if reading:
            os.truncate(pcap, 100000)
        err = p.communicate()[1]
        subprocess.run(["rm", "-rf", xdir])
        os.remove(pcap)
        how = "through the window" if mapped else "with MAILTAP_NO_MMAP=1"
        check(reading, "the 40 MB capture was still being read %s after 3 MiB" % how)
        if mapped:
            check(p.returncode == 2 and b"shrank while it was being read" in err and b"mixed-40M.pcap" in err,
                  "a file cut short while read: exit 2 and a message (%d: %s)" % (p.returncode, err.decode(errors="replace").strip()))
        else:
            check(b"shrank while it was being read" not in err,
                  "libpcap's reading does not give the window's message (%d: %s)" % (p.returncode, err.decode(errors="replace").strip()))


def main():
    global MAILTAP
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--corpus")
    a = ap.parse_args()
    MAILTAP = os.path.abspath(a.mailtap)
    pcaps = sorted(glob.glob(os.path.join(a.samples, "*.pcap")))
    if a.corpus and os.path.isdir(a.corpus):
        pcaps += sorted(glob.glob(os.path.join(a.corpus, "**", "*.pcap*"), recursive=True))
    else:
        print("note: no corpus at %s: samples and generated captures only" % a.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([sys.executable, GEN, "mixed", "--out", tmp, "--seed", "5", "--size", "12M"],
                           capture_output=True)
        check(r.returncode == 0, "gen.py: %s" % r.stderr.decode()[-300:])
        big = os.path.join(tmp, "mixed-12M.pcap")
        for pcap in pcaps + [big]:
            compare(os.path.relpath(pcap), pcap)
        sample = os.path.join(a.samples, "smtp-mime.pcap")
        compare("filter and -w", sample, ("--json", "-f", "tcp port 25"), tmp=tmp)
        compare("filter matching nothing, and -w", sample, ("--json", "-f", "udp"), tmp=tmp)
        compare("text, filter and -w", big, ("-f", "tcp port 110 or tcp port 143"), tmp=tmp)
        for k, (p, rc, off) in variants(sample, tmp).items():
            out, err, code, _ = compare(k, p, want_rc=rc)
            if rc == 2:
                check(os.path.basename(p).encode() in err and b"offset %d" % off in err,
                      "%s: the error names the file and offset %d: %s" % (k, off, err.decode().strip()))
                check(b'"type":"command"' in out, "%s: records before the damage are analyzed" % k)
        check_retransmissions(tmp)
        check_shrink(tmp)
    print("%d checks passed, %d failed (%d captures)" % (PASSES[0], len(FAILS), len(pcaps) + 1))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
