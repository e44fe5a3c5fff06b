#!/usr/bin/python3
"""Sample SMTP server for recording mailtap's sample captures.

aiosmtpd (Debian's python3-aiosmtpd) with:
  * AUTH PLAIN / LOGIN (aiosmtpd built-ins, checked by our authenticator),
    CRAM-MD5, XOAUTH2, OAUTHBEARER and NTLM (handler auth_* methods);
  * STARTTLS with the certificate given on the command line;
  * PIPELINING advertised in EHLO (aiosmtpd reads commands line by line,
    so pipelined commands just work; 1.4 does not advertise it by itself);
  * one rejected recipient (REJECT_RCPT) to produce a 550 in a session.

Usage: smtpd.py --cert C --key K [--spool DIR] PORT [PORT...]
Listens on all addresses (IPv4 and IPv6) of the namespace it runs in.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import logging
import os
import ssl
import struct
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, auth_mechanism

HOSTNAME = "mail.example.test"
# user -> password (SMTP AUTH). Any other password is rejected with 535.
USERS = {
    "alice@example.test": "Wonderland-2024",
    "bob@example.test": "Builder-2024",
}
# OAuth 2.0 bearer tokens accepted by XOAUTH2 / OAUTHBEARER: user -> token.
TOKENS = {
    "alice@example.test": "ya29.mailtap-sample-access-token-0001",
}
REJECT_RCPT = "nobody@example.test"
# Fixed challenges, so re-recorded captures differ as little as possible.
CRAM_CHALLENGE = "<1896.697170952@mail.example.test>"
NTLM_CHALLENGE = bytes.fromhex("0123456789abcdef")

log = logging.getLogger("smtpd")


def authenticator(server, session, envelope, mechanism, auth_data):
    """Used by the built-in PLAIN and LOGIN mechanisms."""
    assert isinstance(auth_data, LoginPassword)
    user = auth_data.login.decode("utf-8", "replace")
    password = auth_data.password.decode("utf-8", "replace")
    ok = USERS.get(user) == password
    log.info("AUTH %s user=%r ok=%s", mechanism, user, ok)
    # handled=False: aiosmtpd then answers a failure with 535 itself
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Handler:
    def __init__(self, spool):
        self.spool = spool
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        # responses ends with "250 HELP"; insert our extensions before it.
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return responses[:-1] + extra + responses[-1:]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() == REJECT_RCPT:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        qid = "%08X" % (0x4D54A000 + self.count)
        if self.spool:
            path = os.path.join(self.spool, "%s.eml" % qid)
            with open(path, "wb") as f:
                f.write(envelope.original_content or envelope.content)
        log.info("DATA from=%s to=%s size=%d", envelope.mail_from,
                 envelope.rcpt_tos, len(envelope.original_content or b""))
        return "250 2.0.0 OK: queued as %s" % qid

    # ---- extra SASL mechanisms (aiosmtpd calls handler.auth_<MECH>(server, args))

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        if len(args) != 1:
            await server.push("501 5.5.4 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        resp = await server.challenge_auth(CRAM_CHALLENGE)
        if not isinstance(resp, bytes):
            return AuthResult(success=False, handled=True)
        try:
            user, digest = resp.decode().rsplit(" ", 1)
        except ValueError:
            return AuthResult(success=False)
        pw = USERS.get(user)
        ok = pw is not None and hmac.compare_digest(
            hmac.new(pw.encode(), CRAM_CHALLENGE.encode(), hashlib.md5).hexdigest(),
            digest.lower())
        log.info("AUTH CRAM-MD5 user=%r ok=%s", user, ok)
        return AuthResult(success=ok, auth_data=LoginPassword(user.encode(), b""))

    async def _initial(self, server, args):
        if len(args) == 2:
            try:
                return base64.b64decode(args[1], validate=True)
            except Exception:
                await server.push("501 5.5.2 Can't decode base64")
                return None
        resp = await server.challenge_auth("")
        return resp if isinstance(resp, bytes) else None

    async def _bearer_fail(self, server):
        # RFC 7628 / Google XOAUTH2: error JSON in a 334, client answers with
        # an empty line (or "AQ==" for OAUTHBEARER), then 535.
        err = b'{"status":"401","schemes":"bearer","scope":"https://mail.example.test/"}'
        await server.push("334 " + b64(err))
        await server._reader.readline()
        return AuthResult(success=False)

    @auth_mechanism("XOAUTH2")
    async def auth_XOAUTH2(self, server, args):
        data = await self._initial(server, args)
        if data is None:
            return AuthResult(success=False, handled=True)
        fields = dict(p.split("=", 1) for p in data.decode().split("\x01") if "=" in p)
        user = fields.get("user", "")
        token = fields.get("auth", "")[len("Bearer "):]
        ok = TOKENS.get(user) == token
        log.info("AUTH XOAUTH2 user=%r ok=%s", user, ok)
        if not ok:
            return await self._bearer_fail(server)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))

    @auth_mechanism("OAUTHBEARER")
    async def auth_OAUTHBEARER(self, server, args):
        data = await self._initial(server, args)
        if data is None:
            return AuthResult(success=False, handled=True)
        parts = data.decode().split("\x01")
        gs2 = parts[0]  # "n,a=user@example.test,"
        user = ""
        for f in gs2.split(","):
            if f.startswith("a="):
                user = f[2:]
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        token = fields.get("auth", "")[len("Bearer "):]
        ok = TOKENS.get(user) == token
        log.info("AUTH OAUTHBEARER user=%r ok=%s", user, ok)
        if not ok:
            return await self._bearer_fail(server)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))

    @auth_mechanism("NTLM")
    async def auth_NTLM(self, server, args):
        # NTLM (as used by Exchange / swaks with Authen::NTLM):
        #   C: AUTH NTLM [type1]   S: 334 [type2]   C: type3   S: 235
        # The server only checks that the Type 3 user name is known; it does
        # not verify the (LM/NT) response (that would need MD4 + DES).
        if len(args) == 2:
            type1 = base64.b64decode(args[1])
        else:
            type1 = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(type1, bytes):
                return AuthResult(success=False, handled=True)
        if not type1.startswith(b"NTLMSSP\0") or struct.unpack("<I", type1[8:12])[0] != 1:
            return AuthResult(success=False)
        c_flags = struct.unpack("<I", type1[12:16])[0]
        unicode = bool(c_flags & 0x1)
        enc = "utf-16-le" if unicode else "ascii"
        target = "EXAMPLE".encode(enc)
        # Target info: MsvAvNbDomainName, MsvAvNbComputerName, MsvAvEOL
        def av(t, v):
            v = v.encode("utf-16-le")
            return struct.pack("<HH", t, len(v)) + v
        tinfo = av(2, "EXAMPLE") + av(1, "MAIL") + av(4, "example.test") + \
            av(3, "mail.example.test") + struct.pack("<HH", 0, 0)
        flags = (0x1 if unicode else 0x2) | 0x4 | 0x200 | 0x10000 | 0x800000 | 0x8000
        hdr_len = 48
        type2 = (b"NTLMSSP\0" + struct.pack("<I", 2)
                 + struct.pack("<HHI", len(target), len(target), hdr_len)
                 + struct.pack("<I", flags) + NTLM_CHALLENGE + b"\0" * 8
                 + struct.pack("<HHI", len(tinfo), len(tinfo), hdr_len + len(target))
                 + target + tinfo)
        type3 = await server.challenge_auth(type2)
        if not isinstance(type3, bytes):
            return AuthResult(success=False, handled=True)
        if not type3.startswith(b"NTLMSSP\0") or struct.unpack("<I", type3[8:12])[0] != 3:
            return AuthResult(success=False)

        def field(off):
            ln, _, o = struct.unpack("<HHI", type3[off:off + 8])
            return type3[o:o + ln]
        t3_flags = struct.unpack("<I", type3[60:64])[0] if len(type3) >= 64 else c_flags
        t3enc = "utf-16-le" if (t3_flags & 0x1) else "ascii"
        domain = field(28).decode(t3enc, "replace")
        user = field(36).decode(t3enc, "replace")
        full = user if "@" in user else user + "@example.test"
        ok = full.lower() in USERS
        log.info("AUTH NTLM domain=%r user=%r ok=%s", domain, user, ok)
        return AuthResult(success=ok, auth_data=LoginPassword(full.encode(), b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--spool")
    ap.add_argument("ports", nargs="+", type=int)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    handler = Handler(a.spool)

    def factory():
        return SMTP(handler, hostname=HOSTNAME, ident="mailtap sample ESMTP",
                    tls_context=ctx, require_starttls=False,
                    auth_require_tls=False, authenticator=authenticator,
                    data_size_limit=32 * 1024 * 1024)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    for p in a.ports:
        loop.run_until_complete(loop.create_server(factory, host=None, port=p,
                                                   reuse_address=True))
    log.info("listening on %s", a.ports)
    print("READY", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
