#!/usr/bin/env python3
"""A real SMTP server for the integration tests (aiosmtpd, `pip install aiosmtpd`).

Listens on 127.0.0.1:PORT, stores every accepted message as DIR/NNNN.eml (with
DIR/NNNN.json: mail_from, rcpt_tos, seq) and prints `READY <port>` once listening.

Options: --starttls / --implicit-tls with a throwaway self-signed certificate made here
(written to DIR/../cert.pem, the test trusts it as ca_file); --user/--password to require
AUTH (only offered after TLS). The control file (--control, JSON, read for every message)
tells it to misbehave for the next N messages:
  {"data": [451, 2]}   answer the final dot with 451 for the next 2 messages (not stored)
  {"rcpt": [550, 1]}   refuse RCPT TO with 550 once
  {"drop": 1}          store the next message, then close the connection without a reply
  {"stall": [30, 1]}   store the next message, then wait 30 s before answering it
The counts left are written back. Exit 98 when the port is taken, 97 without aiosmtpd.
"""
import argparse
import asyncio
import datetime
import errno
import json
import logging
import os
import signal
import ssl
import sys
import threading

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    print("aiosmtpd is not installed: pip install aiosmtpd", file=sys.stderr)
    sys.exit(97)

lock = threading.Lock()


def make_cert(cert, key):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(k, hashes.SHA256())
    )
    with open(key, "wb") as f:
        f.write(
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert, "wb") as f:
        f.write(c.public_bytes(serialization.Encoding.PEM))


class Control:
    def __init__(self, path):
        self.path = path

    def take(self, what):
        """The misbehaviour for `what` if one is left (and counts it down)."""
        if not self.path or not os.path.exists(self.path):
            return None
        with lock:
            with open(self.path) as f:
                text = f.read().strip()
            c = json.loads(text) if text else {}
            v = c.get(what)
            if not v:
                return None
            if what == "drop":
                c[what] = v - 1
                got = True
            else:
                code, n = v
                if n <= 0:
                    return None
                c[what] = [code, n - 1]
                got = code
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(c, f)
            os.replace(tmp, self.path)
            return got


class Handler:
    def __init__(self, out, control):
        self.out = out
        self.control = control
        self.seq = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.control.take("rcpt")
        if code:
            return f"{code} {code // 100}.1.1 refused by the test server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def store(self, envelope):
        with lock:
            self.seq += 1
            seq = self.seq
        base = os.path.join(self.out, f"{seq:04d}")
        with open(base + ".json.tmp", "w") as f:
            json.dump({"seq": seq, "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        os.replace(base + ".json.tmp", base + ".json")
        os.replace(base + ".eml.tmp", base + ".eml")
        return seq

    async def handle_DATA(self, server, session, envelope):
        code = self.control.take("data")
        if code:
            return f"{code} {code // 100}.3.0 the test server says no"
        seq = self.store(envelope)
        stall = self.control.take("stall")
        if stall:
            await asyncio.sleep(stall)
        if self.control.take("drop"):
            server.transport.abort()
            return "250 2.0.0 never seen"
        return f"250 2.0.0 Ok: queued as T{seq:04d}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--control")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    os.makedirs(a.dir, exist_ok=True)
    kw = {}
    ctx = None
    if a.starttls or a.implicit_tls:
        base = os.path.dirname(os.path.abspath(a.dir))
        cert, key = os.path.join(base, "cert.pem"), os.path.join(base, "key.pem")
        if not os.path.exists(cert):
            make_cert(cert, key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    if a.starttls:
        kw.update(tls_context=ctx, require_starttls=True)
    if a.implicit_tls:
        kw.update(server_kwargs={"tls_context": None}, ssl_context=ctx)
    if a.user:
        def auth(server, session, envelope, mechanism, data):
            ok = isinstance(data, LoginPassword) and data.login.decode() == a.user and data.password.decode() == a.password
            logging.info("AUTH %s for %r: %s", mechanism, getattr(data, "login", None), "ok" if ok else "refused")
            # handled=False: aiosmtpd answers 535 itself on a refusal.
            return AuthResult(success=ok, handled=False)
        kw.update(authenticator=auth, auth_required=True, auth_require_tls=True)
    ctl = Controller(Handler(a.dir, Control(a.control)), hostname="127.0.0.1", port=a.port, **kw)
    try:
        ctl.start()
    except Exception as e:  # the port is taken: the harness tries another
        cause = e
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            sys.exit(98)
        raise
    print(f"READY {a.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    ctl.stop()


if __name__ == "__main__":
    main()
