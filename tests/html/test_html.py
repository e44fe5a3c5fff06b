#!/usr/bin/env python3
"""The --html report as a browser shows it (issue 9).

Renders reports in headless Chromium and checks what a reader sees:
  - the report of samples/smtp-auth-plain.pcap: the session, the decoded
    AUTH PLAIN user and password, the subject, the ladder of the dialogue;
  - one report of every sample capture: each session, credential and subject
    that --json finds is visible once the sessions are opened;
  - a crafted capture (written here) whose network strings carry HTML and
    script: an HTML body with <script> and <img onerror>, remote images and
    styles, a hostile subject, EHLO name, user name and attachment names.
    No script of theirs runs (titles unchanged, no element they would
    create, in the page or in the sandboxed frame), nothing is fetched, the
    data blocks cannot close their script elements, and attachment links
    are relative paths to the files that -x saved;
  - the caps: a session of 3,000 dialogue lines and a 100 KB body are cut,
    with a note saying so;
  - the filter box and lazy building of the sessions' DOM.

  test_html.py --mailtap BIN --samples DIR [--keep DIR] [--screenshots DIR]

Skips (exit 0) when /usr/bin/chromium is absent.
"""
import argparse
import base64
import glob
import hashlib
import html.parser
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--hide-scrollbars", "--mute-audio", "--disable-dev-shm-usage"]
TITLE = "mailtap report"

PASSES = [0]
FAILS = []


def check(cond, what):
    if cond:
        PASSES[0] += 1
    else:
        FAILS.append(what)
        print("FAIL", what, flush=True)
    return cond


# ---------------------------------------------------------------- pcap writer

def ip4(s):
    return bytes(int(x) for x in s.split("."))


class Pcap:
    """Ethernet + IPv4 + TCP, classic pcap, checksums left at zero."""

    def __init__(self):
        self.records = []
        self.t = 1700000000.0

    def packet(self, src, sport, dst, dport, seq, ack, flags, payload=b""):
        self.t += 0.0005
        tcp = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                          5 << 4, flags, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), len(self.records) & 0xffff,
                         0x4000, 64, 6, 0, ip4(src), ip4(dst)) + tcp
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip
        sec = int(self.t)
        usec = int(round((self.t - sec) * 1e6))
        self.records.append(struct.pack("<IIII", sec, usec, len(eth), len(eth)) + eth)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
            for r in self.records:
                f.write(r)


SYN, FIN, PSH_ACK, ACK, SYN_ACK, FIN_ACK = 0x02, 0x01, 0x18, 0x10, 0x12, 0x11


class Flow:
    """One TCP connection: handshake, data both ways, FIN both ways."""

    def __init__(self, pcap, client, cport, server, sport):
        self.p, self.c, self.cp, self.s, self.sp = pcap, client, cport, server, sport
        self.cseq, self.sseq = 1000, 50000
        p = pcap
        p.packet(client, cport, server, sport, self.cseq, 0, SYN)
        p.packet(server, sport, client, cport, self.sseq, self.cseq + 1, SYN_ACK)
        self.cseq += 1
        self.sseq += 1
        p.packet(client, cport, server, sport, self.cseq, self.sseq, ACK)

    def client(self, data):
        for i in range(0, len(data), 1400):
            seg = data[i:i + 1400]
            self.p.packet(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, PSH_ACK, seg)
            self.cseq += len(seg)

    def server(self, data):
        for i in range(0, len(data), 1400):
            seg = data[i:i + 1400]
            self.p.packet(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq, PSH_ACK, seg)
            self.sseq += len(seg)

    def close(self):
        p = self.p
        p.packet(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, FIN_ACK)
        self.cseq += 1
        p.packet(self.s, self.sp, self.c, self.cp, self.sseq, self.cseq, FIN_ACK)
        self.sseq += 1
        p.packet(self.c, self.cp, self.s, self.sp, self.cseq, self.sseq, ACK)


def smtp(flow, steps):
    """steps: (client line or None, server reply)"""
    for cmd, rep in steps:
        if cmd is not None:
            flow.client(cmd)
        if rep is not None:
            flow.server(rep)


EVIL_EHLO = "<img src=x onerror=\"document.title='PWNED-EHLO'\">"
EVIL_USER = "\"><script>document.title='PWNED-USER'</script>"
EVIL_PASS = "</script><!--<script>document.title='PWNED-PASS'</script>"
EVIL_SUBJECT = "</script><script>document.title='PWNED-SUBJECT'</script><!-- hi"
EVIL_FILENAME = "\"><img src=x onerror=alert(1)>.html"
JS_FILENAME = "javascript:alert(1)"
HTML_MARK = "Hello from the crafted HTML part"
PLAIN_MARK = "Plain part: </script><b>not bold</b> & friends"
CRAFTED_TITLE = "Crafted page title"
ATTACH_BYTES = b"<script>alert('attachment')</script>\n" * 3
ATTACH2_BYTES = b"just bytes\x00\x01\x02"

HTML_BODY = (
    "<html><head><title>" + CRAFTED_TITLE + "</title>"
    "<link rel=\"stylesheet\" href=\"https://192.0.2.9/remote.css\">"
    "<style>@import url(http://192.0.2.9/import.css); "
    "body { background: url(http://192.0.2.9/bg.png) }</style></head><body>"
    "<p>" + HTML_MARK + "</p>"
    "<script>document.title='PWNED';"
    "document.body.insertAdjacentHTML('beforeend','<p id=\"pwned\">script ran</p>');"
    "try { parent.document.title='PWNED-PARENT' } catch (e) {}</script>"
    "<img src=x onerror=\"document.title='PWNED-IMG';"
    "document.body.insertAdjacentHTML('beforeend','<p id=&quot;pwned2&quot;>onerror ran</p>')\">"
    "<img src=\"http://192.0.2.9/track.png\" width=1 height=1>"
    "<iframe src=\"https://192.0.2.9/frame.html\"></iframe>"
    "<a href=\"http://192.0.2.9/click\">a link</a>"
    "</body></html>")


def crafted_message():
    b64 = lambda data: base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    lines = [
        "From: Mallory <mallory@example.test>",
        "To: Victim <victim@example.test>",
        "Subject: " + EVIL_SUBJECT,
        "Date: Mon, 06 May 2024 09:01:00 +0200",
        "Message-ID: <crafted.1@example.test>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"OUTER\"",
        "",
        "--OUTER",
        "Content-Type: multipart/alternative; boundary=\"INNER\"",
        "",
        "--INNER",
        "Content-Type: text/plain; charset=utf-8",
        "",
        PLAIN_MARK,
        "--INNER",
        "Content-Type: text/html; charset=utf-8",
        "",
        HTML_BODY,
        "--INNER--",
        "--OUTER",
        "Content-Type: text/html; name=\"x.html\"",
        "Content-Disposition: attachment; filename=\"" + EVIL_FILENAME.replace('"', "'") + "\"",
        "Content-Transfer-Encoding: base64",
        "",
        b64(ATTACH_BYTES),
        "--OUTER",
        "Content-Type: application/octet-stream",
        "Content-Disposition: attachment; filename=\"" + JS_FILENAME + "\"",
        "Content-Transfer-Encoding: base64",
        "",
        b64(ATTACH2_BYTES),
        "--OUTER--",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def write_crafted(path):
    """Session 1: the hostile SMTP message.  Session 2: POP3 USER/PASS of bob
    (for the filter).  Session 3: 1,500 NOOPs and a 100 KB body (caps)."""
    p = Pcap()
    f = Flow(p, "192.0.2.10", 40001, "192.0.2.25", 25)
    b64 = lambda s: base64.b64encode(s.encode("utf-8")).decode("ascii").encode("ascii")
    smtp(f, [
        (None, b"220 mx.example.test ESMTP\r\n"),
        (("EHLO " + EVIL_EHLO + "\r\n").encode(), b"250-mx.example.test\r\n250 AUTH LOGIN PLAIN\r\n"),
        (b"AUTH LOGIN\r\n", b"334 VXNlcm5hbWU6\r\n"),
        (b64(EVIL_USER) + b"\r\n", b"334 UGFzc3dvcmQ6\r\n"),
        (b64(EVIL_PASS) + b"\r\n", b"235 2.7.0 ok\r\n"),
        (b"MAIL FROM:<mallory@example.test>\r\n", b"250 OK\r\n"),
        (b"RCPT TO:<victim@example.test>\r\n", b"250 OK\r\n"),
        (b"DATA\r\n", b"354 go ahead\r\n"),
        (crafted_message() + b".\r\n", b"250 queued\r\n"),
        (b"QUIT\r\n", b"221 bye\r\n"),
    ])
    f.close()

    g = Flow(p, "192.0.2.11", 40002, "192.0.2.110", 110)
    smtp(g, [
        (None, b"+OK POP3 ready\r\n"),
        (b"USER bob\r\n", b"+OK\r\n"),
        (b"PASS Builder-2024\r\n", b"+OK logged in\r\n"),
        (b"QUIT\r\n", b"+OK bye\r\n"),
    ])
    g.close()

    h = Flow(p, "192.0.2.12", 40003, "192.0.2.25", 25)
    steps = [(None, b"220 mx.example.test ESMTP\r\n"), (b"EHLO caps.example.test\r\n", b"250 ok\r\n")]
    steps += [(b"NOOP\r\n", b"250 2.0.0 ok\r\n")] * 1500
    big = ("Subject: big body\r\nContent-Type: text/plain\r\n\r\n" +
           "".join("line %05d of a long body that goes on and on\r\n" % i
                   for i in range(2000)) + "END-OF-BIG-BODY\r\n").encode()
    steps += [(b"MAIL FROM:<a@example.test>\r\n", b"250 OK\r\n"),
              (b"RCPT TO:<b@example.test>\r\n", b"250 OK\r\n"),
              (b"DATA\r\n", b"354 go ahead\r\n"), (big + b".\r\n", b"250 queued\r\n"),
              (b"QUIT\r\n", b"221 bye\r\n")]
    smtp(h, steps)
    h.close()
    p.write(path)


# ---------------------------------------------------------------- Chromium

class Chrome:
    """Headless Chromium driven over --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, tmp):
        self.profile = tempfile.mkdtemp(prefix="chrome-", dir=tmp)
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            a, b = os.dup2(a, 100), os.dup2(b, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM] + CHROME_FLAGS + ["--user-data-dir=" + self.profile,
                                         "--remote-debugging-pipe", "--window-size=1280,900",
                                         "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.children = {}

    def _recv(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            r, _, _ = select.select([self.from_chrome], [], [], left)
            if r:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the pipe")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        my_id = self.next_id
        msg = {"id": my_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._recv(deadline)
            self._hook(m)
            if m.get("id") == my_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def post(self, method, params=None, session=None):
        """A command whose answer is not awaited."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")

    def _hook(self, m):
        """Frames of their own process (a sandboxed iframe is one) attach
        paused: watch their network and log too, then let them run."""
        if m.get("method") == "Target.attachedToTarget":
            child = m["params"]["sessionId"]
            self.children.setdefault(m.get("sessionId"), []).append(child)
            for dom in ("Network.enable", "Log.enable", "Page.enable", "Runtime.enable"):
                self.post(dom, session=child)
            self.post("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True,
                                               "flatten": True}, session=child)
            self.post("Runtime.runIfWaitingForDebugger", session=child)

    def wait_event(self, method, session, timeout=30):
        deadline = time.time() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and m.get("sessionId") == session:
                    return self.events.pop(i)
            m = self._recv(deadline)
            self._hook(m)
            self.events.append(m)

    def tree(self, sid):
        """sid and the sessions of the frames attached below it."""
        out = [sid]
        for c in self.children.get(sid, []):
            out += self.tree(c)
        return out

    def open(self, url):
        """A new tab on url, after its load event; returns the session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for dom in ("Page.enable", "Network.enable", "Runtime.enable", "Log.enable"):
            self.send(dom, session=sid)
        self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True,
                                           "flatten": True}, session=sid)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                  session=sid)
        self.send("Page.navigate", {"url": url}, session=sid)
        self.wait_event("Page.loadEventFired", sid)
        self.settle(sid)
        return sid

    def settle(self, sid):
        """Lets toggle events and frames finish."""
        self.eval(sid, "new Promise(r => setTimeout(() => requestAnimationFrame(() => r(1)), 300))")

    def eval(self, sid, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, session=sid)
        if "exceptionDetails" in r:
            raise RuntimeError("evaluate %s: %s" % (expr[:60], r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self, sid, path):
        png = self.send("Page.captureScreenshot", {"format": "png"}, session=sid)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    def session_events(self, sid, method):
        """Events of sid and of its frames."""
        tree = self.tree(sid)
        return [m for m in self.events if m.get("sessionId") in tree and m.get("method") == method]

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)


def dump_dom(url, tmp):
    """The DOM after the page's script ran, as --dump-dom prints it."""
    prof = tempfile.mkdtemp(prefix="chrome-", dir=tmp)
    r = subprocess.run([CHROMIUM] + CHROME_FLAGS + ["--user-data-dir=" + prof,
                                                    "--virtual-time-budget=2000",
                                                    "--dump-dom", url],
                       capture_output=True, timeout=120)
    shutil.rmtree(prof, ignore_errors=True)
    return r.stdout.decode("utf-8", "replace")


class Page(html.parser.HTMLParser):
    """What a dumped DOM shows: its text outside script/style, its elements."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.parts = []
        self.elements = []   # (tag, attrs dict)
        self.title = None
        self._in_title = False
        self.feed(text)
        self.text = "".join(self.parts)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self.skip += 1
        if tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title = (self.title or "") + data
        elif not self.skip:
            self.parts.append(data)


def run_mailtap(args):
    r = subprocess.run([MAILTAP] + args, capture_output=True)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def truth(pcaps):
    """Sessions, credentials and subjects as --json reports them."""
    args = []
    for p in pcaps:
        args += ["-r", p]
    rc, out, err = run_mailtap(args + ["--json", "--no-summary", "-q"])
    events = [json.loads(l) for l in out.splitlines() if l.strip()]
    return events


def data_blocks(text):
    return re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', text, re.S)


def shown(s):
    """A network string as the page shows it, or None if it holds bytes the
    page shows escaped (control characters, U+FFFD)."""
    if s is None or re.search(r"[\x00-\x1f\x7f\ufffd]", s):
        return None
    return s


# ---------------------------------------------------------------- the checks

def check_static(name, path):
    """The file itself: one policy forbidding fetches, inert data blocks,
    no reference to anything outside the file but the saved attachments."""
    text = open(path, encoding="utf-8").read()
    check(text.startswith("<!DOCTYPE html>"), name + ": starts with a doctype")
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    check(m is not None and "default-src 'none'" in m.group(1) and
          "unsafe-inline'" not in m.group(1).split("script-src")[1].split(";")[0],
          name + ": Content-Security-Policy forbids fetches and foreign scripts")
    blocks = data_blocks(text)
    check(len(blocks) >= 2, name + ": has data blocks")
    ok_json, hrefs = True, []
    for bid, body in blocks:
        if "<" in body or ">" in body or "&" in body:
            ok_json = False
            print("  block %s holds a raw < > or &" % bid)
        try:
            obj = json.loads(body)
        except ValueError:
            ok_json = False
            print("  block %s is not JSON" % bid)
            continue
        if bid.startswith("m"):
            hrefs += [p["href"] for p in obj.get("parts", []) if "href" in p]
            if "eml" in obj:
                hrefs.append(obj["eml"])
    check(ok_json, name + ": every data block is JSON without raw < > &")
    rest = re.sub(r'<script type="application/json" id="[^"]+">.*?</script>', "", text, flags=re.S)
    scripts = re.findall(r"<script\b[^>]*>", rest)
    check(scripts == ["<script>"], name + ": exactly one executable script (%r)" % scripts[:3])
    check(text.count("</script>") == len(blocks) + 1, name + ": every </script> closes one of ours")
    check("<!--" not in text, name + ": no comment opener anywhere (script data escape)")
    bad = re.findall(r"(?i)(https?:|ftp:|//[a-z0-9]|\bsrc\s*=|url\(|@import|<link|<img|<iframe)",
                     rest)
    check(not bad, name + ": no reference to anything outside the file (%r)" % bad[:5])
    check(all(re.match(r"^\.{1,2}/[A-Za-z0-9._~%/-]+$", h) and "/../" not in h.lstrip("./")
              for h in hrefs),
          name + ": attachment links are relative and percent-encoded (%r)" % hrefs[:4])
    return text, hrefs


def check_sample(tmp, samples):
    """samples/smtp-auth-plain.pcap: the session, user, password, subject."""
    pcap = os.path.join(samples, "smtp-auth-plain.pcap")
    ev = truth([pcap])
    sessions = [e for e in ev if e["type"] == "session"]
    if not check(len(sessions) == 1, "smtp-auth-plain: --json finds one session"):
        return None
    sid = sessions[0]["session"]
    out = os.path.join(tmp, "sample.html")
    rc, _, err = run_mailtap(["-r", pcap, "--html", out, "--no-summary", "-q"])
    check(rc == 0 and os.path.exists(out), "smtp-auth-plain: --html exits 0 (%d %s)" % (rc, err))
    if not os.path.exists(out):
        return None
    check_static("smtp-auth-plain", out)
    page = Page(dump_dom("file://%s#session=%d" % (out, sid), tmp))
    t = page.text
    check(page.title == TITLE, "smtp-auth-plain: title %r" % page.title)
    check("#%d" % sid in t and "10.99.0.2:" in t and "10.99.0.1:25" in t,
          "smtp-auth-plain: session #%d and its endpoints shown" % sid)
    check("alice@example.test" in t and "Wonderland-2024" in t,
          "smtp-auth-plain: decoded user and password shown")
    check('user="alice@example.test" password="Wonderland-2024"' in t,
          "smtp-auth-plain: the AUTH PLAIN step annotated with its decoded value")
    check("Status note (smtp)" in t, "smtp-auth-plain: subject shown")
    check("C: AUTH PLAIN" in t and "S: 235 2.7.0 Authentication successful" in t and
          "C: QUIT" in t and "S: 221" in t, "smtp-auth-plain: the dialogue as C:/S: lines")
    rows = [a for tag, a in page.elements if tag == "div" and "lrow" in a.get("class", "")]
    check(len(rows) >= 15, "smtp-auth-plain: ladder rows built (%d)" % len(rows))
    check("MIME structure" in t and "text/plain" in t, "smtp-auth-plain: MIME tree shown")
    return out, sid


def check_all_samples(tmp, samples):
    pcaps = sorted(glob.glob(os.path.join(samples, "*.pcap")))
    if not pcaps:
        return None
    ev = truth(pcaps)
    out = os.path.join(tmp, "all.html")
    args = []
    for p in pcaps:
        args += ["-r", p]
    rc, _, err = run_mailtap(args + ["--html", out, "--no-summary", "-q"])
    check(rc == 0, "all samples: --html exits 0 (%d %s)" % (rc, err[-300:]))
    check_static("all samples", out)
    page = Page(dump_dom("file://%s#session=all" % out, tmp))
    t = page.text
    check(page.title == TITLE, "all samples: title %r" % page.title)
    sessions = [e for e in ev if e["type"] == "session"]
    missing = [e["session"] for e in sessions
               if "#%d" % e["session"] not in t or
               ":%d" % e["client"]["port"] not in t]
    check(not missing, "all samples: %d sessions listed with their client ports (missing %r)"
          % (len(sessions), missing[:10]))
    missing = []
    for e in ev:
        if e["type"] == "credential":
            for k in ("username", "password"):
                v = shown(e.get(k))
                if v is not None and v not in t:
                    missing.append((e["session"], k, v))
    check(not missing, "all samples: %d credentials' users and passwords shown (missing %r)"
          % (sum(e["type"] == "credential" for e in ev), missing[:5]))
    missing = []
    for e in ev:
        if e["type"] == "message":
            v = shown(e["headers"].get("subject"))
            if v is not None and v not in t:
                missing.append((e["session"], v))
    check(not missing, "all samples: %d messages' subjects shown (missing %r)"
          % (sum(e["type"] == "message" for e in ev), missing[:5]))
    return out


def check_crafted(tmp, chrome):
    pcap = os.path.join(tmp, "crafted.pcap")
    write_crafted(pcap)
    ev = truth([pcap])
    sess = {e["client"]["port"]: e["session"] for e in ev if e["type"] == "session"}
    check(sorted(sess) == [40001, 40002, 40003], "crafted: --json sees the three sessions")
    if not sess:
        return
    evil, pop, big = sess.get(40001), sess.get(40002), sess.get(40003)
    creds = [e for e in ev if e["type"] == "credential"]
    check(any(c["username"] == EVIL_USER and c["password"] == EVIL_PASS for c in creds),
          "crafted: the hostile AUTH LOGIN credential is decoded")
    xdir = os.path.join(tmp, "x")
    os.makedirs(os.path.join(tmp, "pages"), exist_ok=True)
    out = os.path.join(tmp, "pages", "crafted.html")   # links then go up a directory
    rc, _, err = run_mailtap(["-r", pcap, "--html", out, "-x", xdir, "--no-summary", "-q"])
    check(rc == 0, "crafted: --html -x exits 0 (%d %s)" % (rc, err))
    text, hrefs = check_static("crafted", out)

    # attachment links: relative to the page, onto the files -x saved
    saved = {}
    for h in hrefs:
        path = os.path.normpath(os.path.join(os.path.dirname(out),
                                             urllib.parse.unquote(h)))
        saved[h] = path
    check(any(h.startswith("../x/") for h in hrefs), "crafted: links lead to ../x/ (%r)" % hrefs)
    check(all(os.path.isfile(p) for p in saved.values()), "crafted: every link names a saved file")
    digests = {hashlib.sha256(open(p, "rb").read()).hexdigest() for p in saved.values()}
    check(hashlib.sha256(ATTACH_BYTES).hexdigest() in digests and
          hashlib.sha256(ATTACH2_BYTES).hexdigest() in digests,
          "crafted: the links lead to the attachments' bytes")
    check(not any(h.lower().startswith("javascript") or ":" in h for h in hrefs),
          "crafted: no link has a scheme")

    # the rendered page, every session opened (--dump-dom)
    page = Page(dump_dom("file://%s#session=all" % out, tmp))
    t = page.text
    check(page.title == TITLE, "crafted: page title unchanged (%r)" % page.title)
    check(not any(a.get("id") in ("pwned", "pwned2") for _, a in page.elements),
          "crafted: no element made by the message's script")
    tags = {tag for tag, _ in page.elements}
    check(not tags & {"img", "link", "object", "embed", "form", "base"},
          "crafted: no network-made element in the page (%r)" % (tags & {"img", "link"}))
    check(not any(k.startswith("on") for _, a in page.elements for k in a),
          "crafted: no event-handler attribute in the page")
    frames = [a for tag, a in page.elements if tag == "iframe"]
    check(len(frames) >= 1 and all(a.get("sandbox") == "" for a in frames),
          "crafted: the HTML body is in an iframe with sandbox=\"\" (%r)" %
          [a.get("sandbox") for a in frames])
    check(all("allow-scripts" not in a.get("sandbox", "x") for a in frames) and
          all(a.get("srcdoc", "").startswith('<meta http-equiv="Content-Security-Policy"')
              for a in frames),
          "crafted: frames without allow-scripts, with their own policy")
    check(EVIL_EHLO in t, "crafted: the EHLO name shown as text")
    check(EVIL_USER in t and EVIL_PASS in t, "crafted: the hostile user and password shown as text")
    check(EVIL_SUBJECT in t, "crafted: the hostile subject shown as text")
    check(PLAIN_MARK in t, "crafted: the text/plain body shown as text")
    check("<script>document.title='PWNED';" in t, "crafted: the HTML source shown as text")
    check(EVIL_FILENAME.replace('"', "'") in t, "crafted: the attachment's file name shown as text")

    # caps
    check("... 1000 more lines not shown" in t or re.search(r"\.\.\. \d+ more lines not shown", t),
          "crafted: the 3,000-line dialogue is cut with a note")
    m = re.search(r"line 0\d{4} of a long body", t)
    check(m is not None and "END-OF-BIG-BODY" not in t and "more not shown" in t,
          "crafted: the 100 KB body is cut at the cap with a note")

    # interactive: frames, fetches, filter, lazy building
    sid = chrome.open("file://%s#session=%d" % (out, evil))
    title = chrome.eval(sid, "document.title")
    check(title == TITLE, "crafted (live): document.title unchanged (%r)" % title)
    check(chrome.eval(sid, "!document.getElementById('pwned') && !document.getElementById('pwned2')"),
          "crafted (live): no element made by the message's script")
    inner = []
    for fs in chrome.tree(sid)[1:]:       # frames in a process of their own
        inner.append(chrome.send("DOM.getDocument", {"depth": -1, "pierce": True},
                                 session=fs)["root"])
    # frames in the page's process (a Chromium that does not isolate sandboxed frames)
    doc = chrome.send("DOM.getDocument", {"depth": -1, "pierce": True}, session=sid)["root"]

    def walk(n):
        if n.get("nodeName") == "IFRAME" and "contentDocument" in n:
            inner.append(n["contentDocument"])
            return
        for c in n.get("children", []):
            walk(c)
    walk(doc)
    check(len(inner) >= 1, "crafted (live): the sandboxed frame has a document")

    def texts(n, acc, ids, titles, in_title=False):
        if n.get("nodeType") == 3:
            (titles if in_title else acc).append(n.get("nodeValue", ""))
        attrs = n.get("attributes", [])
        for i in range(0, len(attrs), 2):
            if attrs[i] == "id":
                ids.append(attrs[i + 1])
        for c in n.get("children", []):
            texts(c, acc, ids, titles, in_title or n.get("nodeName") == "TITLE")
        return acc, ids, titles
    for d in inner:
        acc, ids, titles = texts(d, [], [], [])
        check(HTML_MARK in "".join(acc), "crafted (live): the frame rendered the HTML body")
        check(titles == [CRAFTED_TITLE],
              "crafted (live): the frame's title unchanged, its script did not run (%r)" % titles)
        check("pwned" not in ids and "pwned2" not in ids,
              "crafted (live): no element made in the frame by <script> or onerror")
    # a click on the body's link: the frame may not navigate off the file
    for fs in chrome.tree(sid)[1:]:
        chrome.send("Runtime.evaluate", {"expression": "for (const a of document.links) a.click()"},
                    session=fs)
    chrome.eval(sid, "new Promise(r => setTimeout(r, 500))")
    # Every request for something outside the file must have been refused by
    # the policy inside the browser (DevTools reports the attempt, then the
    # refusal): none may have gone to the network.
    asked = {m["params"]["requestId"]: m["params"]["request"]["url"]
             for m in chrome.session_events(sid, "Network.requestWillBeSent")}
    refused = {m["params"]["requestId"] for m in chrome.session_events(sid, "Network.loadingFailed")
               if m["params"].get("blockedReason") == "csp" or
               "BLOCKED_BY_CSP" in m["params"].get("errorText", "")}
    remote = [u for r, u in asked.items()
              if not u.startswith(("file://", "data:", "about:")) and r not in refused]
    check(not remote, "crafted (live): no request went out (%r)" % remote[:5])
    check("http://192.0.2.9/click" not in asked.values() or
          any(k for k, u in asked.items() if u == "http://192.0.2.9/click" and k in refused),
          "crafted (live): a click on a link in the body loads nothing")
    logs = [m["params"]["entry"].get("text", "")
            for m in chrome.session_events(sid, "Log.entryAdded")]
    blocked = [l for l in logs if "Content Security Policy" in l and "192.0.2.9" in l]
    check(blocked, "crafted (live): the policy refused the body's remote references")

    # lazy: a closed session has no DOM yet; opening it builds the ladder
    n_before = chrome.eval(sid, "document.querySelectorAll('#session-%d .lrow').length" % pop)
    chrome.eval(sid, "document.querySelector('#session-%d > summary').click()" % pop)
    chrome.settle(sid)
    n_after = chrome.eval(sid, "document.querySelectorAll('#session-%d .lrow').length" % pop)
    check(n_before == 0 and n_after >= 8,
          "crafted (live): a session's ladder is built when it is opened (%r -> %r)" %
          (n_before, n_after))
    check(chrome.eval(sid, "location.hash") == "#session=%d" % pop,
          "crafted (live): opening a session names it in the address")

    def filter_to(q):
        chrome.eval(sid, "(() => { const f = document.getElementById('filter'); f.value = %s;"
                         " f.dispatchEvent(new Event('input')); })()" % json.dumps(q))
        chrome.eval(sid, "new Promise(r => setTimeout(r, 400))")
        return chrome.eval(sid, "[...document.querySelectorAll('details.sess')]"
                                ".map(d => d.id)")
    check(filter_to("bob") == ["session-%d" % pop], "crafted (live): filter by user")
    check(filter_to("pop3") == ["session-%d" % pop], "crafted (live): filter by protocol")
    check(filter_to("192.0.2.12") == ["session-%d" % big], "crafted (live): filter by address")
    check(filter_to("<script>document.title='PWNED-SUBJECT'") == ["session-%d" % evil],
          "crafted (live): filter by subject")
    check(filter_to("#%d" % evil) == ["session-%d" % evil], "crafted (live): filter by #id")
    check(len(filter_to("")) == 3, "crafted (live): an empty filter lists every session")
    check(chrome.eval(sid, "document.title") == TITLE, "crafted (live): title still unchanged")


def screenshots(chrome, d, sample, all_html):
    """1280x900 views of the reports for the README."""
    os.makedirs(d, exist_ok=True)
    if sample:
        out, sid = sample
        # report.png: the sample's session opened, its ladder in view
        tab = chrome.open("file://%s#session=%d" % (out, sid))
        chrome.screenshot(tab, os.path.join(d, "report.png"))
        # report-message.png: its message
        chrome.eval(tab, "document.querySelector('article.msg').scrollIntoView({block: 'start'})")
        chrome.settle(tab)
        chrome.screenshot(tab, os.path.join(d, "report-message.png"))
    if all_html:
        # report-sessions.png: every sample, the list filtered to IMAP
        tab = chrome.open("file://%s" % all_html)
        chrome.eval(tab, "(() => { const f = document.getElementById('filter'); f.value = 'imap';"
                         " f.dispatchEvent(new Event('input'));"
                         " document.querySelector('#sessions').previousElementSibling"
                         ".previousElementSibling.scrollIntoView({block: 'start'}); })()")
        chrome.eval(tab, "new Promise(r => setTimeout(r, 400))")
        chrome.screenshot(tab, os.path.join(d, "report-sessions.png"))


def main():
    global MAILTAP
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", required=True)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--keep", help="write the reports here and keep them")
    ap.add_argument("--screenshots", metavar="DIR",
                    help="also save the README's screenshots here (report.png, report-*.png)")
    a = ap.parse_args()
    MAILTAP = os.path.abspath(a.mailtap)
    if not os.access(CHROMIUM, os.X_OK):
        print("SKIP: chromium not found")
        return 0
    tmp = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="mailtap-html-")
    os.makedirs(tmp, exist_ok=True)
    chrome = Chrome(tmp)
    try:
        r = check_sample(tmp, a.samples)
        all_html = check_all_samples(tmp, a.samples)
        check_crafted(tmp, chrome)
        if a.screenshots:
            screenshots(chrome, os.path.abspath(a.screenshots), r, all_html)
    finally:
        chrome.close()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (PASSES[0], len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
