#!/usr/bin/env python3
"""A minimal asyncssh 2.x SFTP server for regdrop's interop tests (tests/it/util/asyncssh.rs).

Serves ROOT as "/" (chroot) to one user, who may log in with a key from the authorized-keys
file or with the password. Prints "READY <port>" on stdout once listening; exits 98 when
the port is taken (the harness then retries on another port). Logs to stderr.
"""

import argparse
import asyncio
import errno
import logging
import sys

try:
    import asyncssh
except ImportError:  # the harness turns this into a `pip install asyncssh` hint
    print("asyncssh is not installed: run `pip install asyncssh`", file=sys.stderr)
    sys.exit(97)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host-key", required=True)
    p.add_argument("--authorized-keys", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--root", required=True)
    a = p.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn) -> None:
            self.conn = conn

        def begin_auth(self, username: str) -> bool:
            # Keys are accepted for the one user only.
            if username == a.user:
                self.conn.set_authorized_keys(a.authorized_keys)
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == a.user and password == a.password

    def sftp_factory(chan):
        return asyncssh.SFTPServer(chan, chroot=a.root.encode())

    async def run() -> None:
        try:
            await asyncssh.listen(
                "127.0.0.1",
                a.port,
                server_factory=Server,
                server_host_keys=[a.host_key],
                sftp_factory=sftp_factory,
                allow_scp=False,
                reuse_address=False,
            )
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                print(f"port {a.port}: Address already in use", file=sys.stderr, flush=True)
                sys.exit(98)
            raise
        print(f"READY {a.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
