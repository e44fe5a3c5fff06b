#!/usr/bin/python3
"""Python (stdlib smtplib / poplib / imaplib) clients for record.sh.

Usage: mailclient.py SCENARIO SERVER_ADDR MSGDIR
Every scenario ends with a clean logout (QUIT / LOGOUT) so the capture has
the whole dialogue and the FIN handshake. Exits non-zero if the dialogue
did not go as expected.
"""
import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import smtplib
import socket
import ssl
import sys
import time
import zlib

HELO = "client.example.test"
SMTP_USER, SMTP_PW = "alice@example.test", "Wonderland-2024"
USER, PW = "alice", "Wonderland-2024"
QUOTED_USER, QUOTED_PW = "bob", 'pa ss"wo\\rd'       # space, quote, backslash
LITERAL_USER, LITERAL_PW = "carol", "Pässwörd-2024"  # 8-bit: must be a literal
BAD_PW = "wrong-password"


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # self-signed test certificate
    return ctx


def msg(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


def log(*a):
    print(*a, flush=True)


# ------------------------------------------------------------------- SMTP
def smtp_session(host, port=25):
    s = smtplib.SMTP(host, port, local_hostname=HELO, timeout=60)
    s.set_debuglevel(1)
    return s


def smtp_multi(host, d):
    s = smtp_session(host)
    s.ehlo()
    s.login(SMTP_USER, SMTP_PW)
    # transaction 1: two good recipients + one rejected (550)
    refused = s.sendmail("alice@example.test",
                         ["bob@example.test", "nobody@example.test", "carol@example.test"],
                         msg(d, "multi1.eml"))
    log("refused:", refused)
    assert "nobody@example.test" in refused
    # transaction 2 in the same session
    s.sendmail("alice@example.test", ["dave@example.test", "bob@example.test"],
               msg(d, "multi2.eml"))
    s.quit()


def smtp_auth_xoauth2(host, d):
    """AUTH XOAUTH2 with an initial response (curl prefers OAUTHBEARER)."""
    token = "ya29.mailtap-sample-access-token-0001"
    s = smtp_session(host)
    s.ehlo()
    s.auth("XOAUTH2", lambda challenge=None: f"user={SMTP_USER}\x01auth=Bearer {token}\x01\x01",
           initial_response_ok=True)
    s.sendmail(SMTP_USER, ["bob@example.test"], msg(d, "simple.eml"))
    s.quit()


def smtp_mime(host, d):
    s = smtp_session(host)
    s.ehlo()
    s.login(SMTP_USER, SMTP_PW)
    # smtplib does the dot-stuffing of the lines starting with '.'
    s.sendmail("alice@example.test", ["bob@example.test", "carol@example.test"],
               msg(d, "mime.eml"))
    s.quit()


def smtp_large(host, d):
    s = smtp_session(host)
    s.set_debuglevel(0)  # don't log 5 MB
    s.ehlo()
    s.login(SMTP_USER, SMTP_PW)
    data = msg(d, "large.eml")
    s.sendmail("alice@example.test", ["bob@example.test"], data,
               mail_options=["SIZE=%d" % len(data)])
    s.quit()


# ------------------------------------------------------------------- POP3
def pop_session(host, port=110):
    p = poplib.POP3(host, port, timeout=30)
    p.set_debuglevel(1)
    return p


def pop_mailbox(p, dele=True):
    log(p.stat())
    log(p.list())
    log(p.uidl())
    p.retr(1)
    p.retr(2)
    if dele:
        p.dele(1)


def pop3_user_pass(host, d, port=110):
    p = pop_session(host, port)
    p.user(USER)
    p.pass_(PW)
    pop_mailbox(p)
    p.quit()


def pop3_apop(host, d):
    p = pop_session(host)
    log("greeting", p.welcome)
    p.apop(USER, PW)
    log(p.stat())
    log(p.uidl())
    p.retr(3)
    p.quit()


def pop3_top(host, d):
    p = pop_session(host)
    p.capa()
    p.user(USER)
    p.pass_(PW)
    log(p.list())
    p.top(1, 0)
    p.top(2, 5)
    p.quit()


def pop3_fail(host, d):
    p = pop_session(host)
    p.user(USER)
    try:
        p.pass_(BAD_PW)
    except poplib.error_proto as e:
        log("rejected as expected:", e)
    else:
        raise SystemExit("bad password accepted")
    p.quit()


def pop3_stls(host, d):
    p = pop_session(host)
    p.capa()
    p.stls(tls_ctx())
    p.capa()
    p.user(USER)
    p.pass_(PW)
    pop_mailbox(p)
    p.quit()


def pop3_port(host, d):
    pop3_user_pass(host, d, port=10110)


def pop3_ipv6(host, d):
    pop3_user_pass(host, d)


# ------------------------------------------------------------------- IMAP
def imap_session(host, port=143):
    m = imaplib.IMAP4(host, port, timeout=30)
    m.debug = 4
    return m


def imap_browse(m):
    m.select("INBOX", readonly=True)
    m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE)")
    m.uid("FETCH", "1", "(BODY.PEEK[])")


def imap_login_quoted(host, d):
    m = imap_session(host)
    m.capability()
    m.login(QUOTED_USER, QUOTED_PW)   # imaplib sends it as a quoted string
    imap_browse(m)
    m.logout()


def imap_login_literal(host, d):
    m = imap_session(host)
    m.capability()
    # imaplib sends self.literal as a {n} literal after the last argument
    m.literal = LITERAL_PW.encode("utf-8")
    typ, dat = m._simple_command("LOGIN", LITERAL_USER)
    assert typ == "OK", dat
    m.state = "AUTH"
    imap_browse(m)
    m.logout()


def imap_authenticate_plain(host, d):
    m = imap_session(host)
    m.capability()
    m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PW)).encode())
    imap_browse(m)
    m.logout()


def imap_authenticate_login(host, d):
    m = imap_session(host)
    m.capability()
    answers = iter([USER.encode(), PW.encode()])
    m.authenticate("LOGIN", lambda _: next(answers))
    imap_browse(m)
    m.logout()


def imap_authenticate_cram_md5(host, d):
    m = imap_session(host)
    m.capability()
    m.login_cram_md5(USER, PW)
    imap_browse(m)
    m.logout()


def imap_fetch(host, d, port=143):
    m = imap_session(host, port)
    m.capability()
    m.login(USER, PW)
    m.list()
    m.select("INBOX")
    m.uid("SEARCH", None, "ALL")
    m.uid("FETCH", "1:3", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
    m.uid("FETCH", "1,2,3", "(BODY.PEEK[])")
    m.uid("FETCH", "2", "(BODY.PEEK[]<0.100>)")
    m.uid("FETCH", "3", "(BODY[HEADER])")      # not PEEK: sets \Seen
    m.uid("FETCH", "2", "(BODYSTRUCTURE)")
    m.close()
    m.logout()


def imap_append(host, d):
    m = imap_session(host)
    m.login(USER, PW)
    m.create("Drafts")
    m.append("Drafts", r"(\Draft \Seen)", '"11-May-2024 18:00:00 +0200"',
             msg(d, "append.eml"))
    m.select("Drafts")
    m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    m.close()
    m.logout()


def imap_idle(host, d):
    m = imap_session(host)
    m.capability()
    m.login(USER, PW)
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    log("S:", line)
    assert line.startswith(b"+"), line
    time.sleep(0.5)
    # a second client delivers a message into INBOX while the first idles
    m2 = imap_session(host)
    m2.login(USER, PW)
    m2.append("INBOX", None, '"12-May-2024 07:30:00 +0200"', msg(d, "idle.eml"))
    m2.logout()
    got = []
    deadline = time.time() + 10
    while time.time() < deadline:
        line = m.readline()
        log("S:", line)
        got.append(line)
        if b"EXISTS" in line:
            break
    time.sleep(0.3)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        log("S:", line)
        if line.startswith(tag):
            break
    assert any(b"EXISTS" in l for l in got), got
    m.uid("FETCH", "4", "(ENVELOPE)")
    m.logout()


class DeflateIMAP(imaplib.IMAP4):
    """imaplib with RFC 4978 COMPRESS=DEFLATE after the command succeeds."""

    def start_compress(self):
        typ, dat = self._simple_command("COMPRESS", "DEFLATE")
        assert typ == "OK", dat
        self._zc = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        self._zd = zlib.decompressobj(-15)
        self._zbuf = b""
        self._compressed = True

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise imaplib.IMAP4.abort("EOF")
        self._zbuf += self._zd.decompress(data)

    def read(self, size):
        if not getattr(self, "_compressed", False):
            return super().read(size)
        while len(self._zbuf) < size:
            self._fill()
        out, self._zbuf = self._zbuf[:size], self._zbuf[size:]
        return out

    def readline(self):
        if not getattr(self, "_compressed", False):
            return super().readline()
        while b"\n" not in self._zbuf:
            self._fill()
        i = self._zbuf.index(b"\n") + 1
        out, self._zbuf = self._zbuf[:i], self._zbuf[i:]
        return out

    def send(self, data):
        if not getattr(self, "_compressed", False):
            return super().send(data)
        self.sock.sendall(self._zc.compress(data) + self._zc.flush(zlib.Z_SYNC_FLUSH))


def imap_compress(host, d):
    # imaplib does not know the command; Dovecot offers it only after login
    imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))
    m = DeflateIMAP(host, 143, timeout=30)
    m.debug = 4
    m.login(USER, PW)
    typ, caps = m.capability()
    assert b"COMPRESS=DEFLATE" in caps[0], caps
    m.start_compress()
    m.select("INBOX", readonly=True)
    m.uid("FETCH", "1:3", "(UID FLAGS RFC822.SIZE)")
    m.uid("FETCH", "1,2", "(BODY.PEEK[])")
    m.logout()


def imap_starttls(host, d):
    m = imap_session(host)
    m.capability()
    m.starttls(tls_ctx())
    m.login(USER, PW)
    imap_browse(m)
    m.logout()


def imap_fail(host, d):
    m = imap_session(host)
    m.capability()
    try:
        m.login(USER, BAD_PW)
    except imaplib.IMAP4.error as e:
        log("rejected as expected:", e)
    else:
        raise SystemExit("bad password accepted")
    m.logout()


def imap_port(host, d):
    imap_fetch(host, d, port=10143)


def imap_ipv6(host, d):
    imap_fetch(host, d)


def main():
    scen, host, d = sys.argv[1:4]
    fn = globals()[scen.replace("-", "_")]
    fn(host, d)


if __name__ == "__main__":
    main()
