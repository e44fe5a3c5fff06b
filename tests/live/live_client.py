#!/usr/bin/env python3
"""Real stdlib mail clients for test_live.py (run inside the client namespace).

  live_client.py smtp HOST MSGFILE   EHLO, AUTH PLAIN, then prints "AUTHED" and
                                     waits for a line on stdin before MAIL/RCPT/
                                     DATA/QUIT (so the test can see the credential
                                     event while the session is still open)
  live_client.py pop3 HOST           USER/PASS, RETR 1, QUIT
  live_client.py imap HOST           LOGIN, SELECT, UID FETCH 1 BODY.PEEK[], LOGOUT

Each prints, as its last line, one JSON object with what it sent and received:
user, password, the commands it sent (verbs, in order) and the SHA-256 of the
message bytes as they are on either end (dot-stuffing undone), so the test
compares mailtap's events with what really went over the wire.
"""
import hashlib
import imaplib
import json
import poplib
import smtplib
import sys

SMTP_USER, SMTP_PW = "alice@example.test", "Wonderland-2024"
USER, PW = "alice", "Wonderland-2024"
HELO = "client.example.test"
MAIL_FROM, RCPT_TO = "alice@example.test", "bob@example.test"


def result(**kw):
    print(json.dumps(kw), flush=True)


def smtp(host, msgfile):
    with open(msgfile, "rb") as f:
        raw = f.read()
    # what smtplib.sendmail transmits for bytes, before dot-stuffing: the bytes
    # as they are plus a final CRLF if missing (mime.eml has CRLF line ends); the
    # server sees exactly these bytes once it undoes the stuffing
    data = raw
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    s = smtplib.SMTP(host, 25, local_hostname=HELO, timeout=20)
    s.ehlo()
    # AUTH PLAIN explicitly: smtp.login() would prefer CRAM-MD5 (advertised)
    s.user, s.password = SMTP_USER, SMTP_PW
    code, resp = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
    assert code == 235, (code, resp)
    print("AUTHED", flush=True)
    if not sys.stdin.readline():
        raise SystemExit("no go-ahead from the test")
    refused = s.sendmail(MAIL_FROM, [RCPT_TO], raw)
    assert not refused, refused
    s.quit()
    result(proto="smtp", username=SMTP_USER, password=SMTP_PW, mechanism="PLAIN",
           commands=["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"],
           sha256=hashlib.sha256(data).hexdigest(), size=len(data),
           mail_from="<%s>" % MAIL_FROM, rcpt_to=["<%s>" % RCPT_TO])


def pop3(host):
    p = poplib.POP3(host, 110, timeout=20)
    p.user(USER)
    p.pass_(PW)
    resp, lines, octets = p.retr(1)
    # poplib strips CRLFs and undoes the dot-stuffing of each line
    data = b"".join(l + b"\r\n" for l in lines)
    p.quit()
    result(proto="pop3", username=USER, password=PW, mechanism="USER",
           commands=["USER", "PASS", "RETR", "QUIT"],
           sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def imap(host):
    m = imaplib.IMAP4(host, 143, timeout=20)   # sends CAPABILITY by itself
    m.login(USER, PW)
    m.select("INBOX", readonly=True)           # EXAMINE
    typ, dat = m.uid("FETCH", "1", "(BODY.PEEK[])")
    assert typ == "OK", dat
    data = dat[0][1]                            # the literal's bytes
    m.logout()
    result(proto="imap", username=USER, password=PW, mechanism="IMAP LOGIN",
           commands=["CAPABILITY", "LOGIN", "EXAMINE", "UID FETCH", "LOGOUT"],
           sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def main():
    what = sys.argv[1]
    if what == "smtp":
        smtp(sys.argv[2], sys.argv[3])
    elif what == "pop3":
        pop3(sys.argv[2])
    elif what == "imap":
        imap(sys.argv[2])
    else:
        raise SystemExit("unknown client " + what)


if __name__ == "__main__":
    main()
