#!/usr/bin/python3
"""Generate the deterministic messages used by record.sh.

Usage: gen_messages.py OUTDIR
All content (texts, attachments, boundaries, dates, Message-IDs) is fixed;
binary attachments come from random.Random with a fixed seed.
"""
import base64
import os
import random
import sys
import textwrap

CRLF = "\r\n"


def b64lines(data, width=76):
    s = base64.b64encode(data).decode("ascii")
    return CRLF.join(s[i:i + width] for i in range(0, len(s), width))


def enc_word(text, charset):
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def rnd_bytes(seed, n):
    r = random.Random(seed)
    return bytes(r.getrandbits(8) for _ in range(n)) if n < 200000 else r.randbytes(n)


def fake_png(seed, n):
    # PNG signature + random payload: looks binary, detected as image/png.
    return b"\x89PNG\r\n\x1a\n" + rnd_bytes(seed, n - 8)


def headers(frm, to, subject, date, msgid, extra=()):
    h = ["From: " + frm, "To: " + to, "Subject: " + subject, "Date: " + date,
         "Message-ID: <%s>" % msgid, "MIME-Version: 1.0"]
    h.extend(extra)
    return CRLF.join(h)


def plain(frm, to, subject, date, msgid, body, extra=()):
    return (headers(frm, to, subject, date, msgid,
                    ["Content-Type: text/plain; charset=us-ascii",
                     "Content-Transfer-Encoding: 7bit", *extra])
            + CRLF + CRLF + CRLF.join(body.split("\n")) + CRLF)


ALICE = "Alice Example <alice@example.test>"
BOB = "Bob Builder <bob@example.test>"
CAROL = "Carol Sample <carol@example.test>"

SIMPLE_BODY = textwrap.dedent("""\
    Hi Bob,

    here is the short status note for this week. The capture pipeline
    works, the dissector handles SMTP and the reassembly queue is stable.

    Regards,
    Alice""")


def simple(tag, n):
    return plain(ALICE, BOB, "Status note (%s)" % tag,
                 "Mon, 06 May 2024 09:%02d:00 +0200" % n,
                 "%s.%d@client.example.test" % (tag, n), SIMPLE_BODY)


def mime_message():
    """Nested multipart/mixed + multipart/alternative, GBK and UTF-8 encoded
    words, RFC 2231 filename, binary attachment, lines starting with '.'."""
    subj_gbk = enc_word("季度报告：邮件分析", "GBK")
    subj_utf8 = enc_word("Grüße – Übersicht", "UTF-8")
    png = fake_png(2231, 3000)
    pdf_name = "Bericht-Übersicht-季度.pdf"
    pdf = b"%PDF-1.4\n% mailtap sample\n" + rnd_bytes(7, 1500) + b"\n%%EOF\n"
    from urllib.parse import quote
    fn2231 = "UTF-8''" + quote(pdf_name, safe="")
    text = CRLF.join([
        "Hello Bob,",
        "",
        "this message tests SMTP dot-stuffing. The next lines start with a dot:",
        ".hidden line that starts with one dot",
        "..two dots at the start",
        ".",
        "(the line above is a single dot)",
        "",
        "-- ",
        "Alice",
    ])
    html = CRLF.join([
        "<html><body>",
        "<p>Hello Bob,</p>",
        "<p>this message tests <b>SMTP dot-stuffing</b>.</p>",
        "</body></html>",
    ])
    parts = [
        headers(ALICE, "=?UTF-8?B?%s?= <bob@example.test>"
                % base64.b64encode("Bób Büilder".encode()).decode(),
                subj_gbk, "Tue, 07 May 2024 14:30:00 +0800",
                "mime.1@client.example.test",
                ["Cc: " + CAROL,
                 "X-Alt-Subject: " + subj_utf8,
                 "Thread-Topic: " + subj_utf8,
                 'Content-Type: multipart/mixed; boundary="=_mixed_0001"']),
        "",
        "This is a multi-part message in MIME format.",
        "",
        "--=_mixed_0001",
        'Content-Type: multipart/alternative; boundary="=_alt_0002"',
        "",
        "--=_alt_0002",
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: 7bit",
        "",
        text,
        "",
        "--=_alt_0002",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        html,
        "",
        "--=_alt_0002--",
        "",
        "--=_mixed_0001",
        'Content-Type: image/png; name="chart.png"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="chart.png"',
        "",
        b64lines(png),
        "",
        "--=_mixed_0001",
        "Content-Type: application/pdf",
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment; filename*=" + fn2231,
        "",
        b64lines(pdf),
        "",
        "--=_mixed_0001--",
        "",
    ]
    return CRLF.join(parts)


def gbk_attachment_message():
    """For the mailbox: GBK subject + small binary attachment."""
    subj = enc_word("会议纪要（第三季度）", "GBK")
    body = "会议纪要见附件。\r\n\r\n王小明\r\n".encode("gbk")
    att = rnd_bytes(42, 1200)
    return CRLF.join([
        headers("=?GBK?B?%s?= <wang@example.test>"
                % base64.b64encode("王小明".encode("gbk")).decode(),
                "Alice Example <alice@example.test>", subj,
                "Wed, 08 May 2024 10:15:00 +0800", "gbk.1@mail.example.cn",
                ['Content-Type: multipart/mixed; boundary="----=_Part_42_1"']),
        "",
        "------=_Part_42_1",
        "Content-Type: text/plain; charset=GBK",
        "Content-Transfer-Encoding: base64",
        "",
        b64lines(body),
        "",
        "------=_Part_42_1",
        'Content-Type: application/octet-stream; name="minutes.bin"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="minutes.bin"',
        "",
        b64lines(att),
        "",
        "------=_Part_42_1--",
        "",
    ])


def large_message(size=5 * 1024 * 1024):
    # base64 expands by 4/3 (+ CRLF every 76 chars): pick the raw size so
    # the whole message is about `size` bytes.
    raw = int(size * 0.74)
    data = b"PK\x03\x04" + rnd_bytes(5000, raw - 4)
    return CRLF.join([
        headers(ALICE, BOB, "Large archive (5 MB)", "Thu, 09 May 2024 08:00:00 +0200",
                "large.1@client.example.test",
                ['Content-Type: multipart/mixed; boundary="=_large_0001"']),
        "",
        "--=_large_0001",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "The archive you asked for is attached.",
        "",
        "--=_large_0001",
        'Content-Type: application/zip; name="archive.zip"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="archive.zip"',
        "",
        b64lines(data),
        "",
        "--=_large_0001--",
        "",
    ])


def html_message():
    return CRLF.join([
        headers(CAROL, ALICE, "Lunch on Friday?", "Fri, 10 May 2024 11:45:00 +0200",
                "lunch.1@carol.example.test",
                ['Content-Type: multipart/alternative; boundary="alt-7"']),
        "",
        "--alt-7",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Shall we try the new caf=C3=A9 on Friday at 12:30?",
        "",
        "--alt-7",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "<p>Shall we try the new caf=C3=A9 on <b>Friday</b> at 12:30?</p>",
        "",
        "--alt-7--",
        "",
    ])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    msgs = {
        "simple.eml": simple("smtp", 1),
        "multi1.eml": plain(ALICE, "Bob Builder <bob@example.test>, Carol Sample <carol@example.test>",
                            "Release planning", "Mon, 06 May 2024 10:00:00 +0200",
                            "multi.1@client.example.test",
                            "Bob, Carol,\n\nrelease planning is on Wednesday.\n\nAlice"),
        "multi2.eml": plain(ALICE, "Dave <dave@example.test>",
                            "Re: Release planning", "Mon, 06 May 2024 10:01:00 +0200",
                            "multi.2@client.example.test",
                            "Dave,\n\nyou are invited too.\n\nAlice",
                            ["In-Reply-To: <multi.1@client.example.test>",
                             "References: <multi.1@client.example.test>"]),
        "mime.eml": mime_message(),
        "large.eml": large_message(),
        # mailbox content (Dovecot maildir, user alice)
        "mbox1.eml": plain(BOB, ALICE, "Re: Status note", "Mon, 06 May 2024 12:00:00 +0200",
                           "reply.1@mail.example.test",
                           "Thanks Alice, looks good.\n\n.Dot line kept as is.\nBob",
                           ["In-Reply-To: <smtp.1@client.example.test>"]),
        "mbox2.eml": gbk_attachment_message(),
        "mbox3.eml": html_message(),
        "append.eml": plain(ALICE, ALICE, "Draft: notes for the meeting",
                            "Sat, 11 May 2024 18:00:00 +0200", "draft.1@client.example.test",
                            "1. capture\n2. reassembly\n3. dissectors"),
        "idle.eml": plain(CAROL, ALICE, "New message while idling",
                          "Sun, 12 May 2024 07:30:00 +0200", "idle.1@carol.example.test",
                          "This one arrives while the other client is in IDLE."),
    }
    for name, text in msgs.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)


if __name__ == "__main__":
    main()
