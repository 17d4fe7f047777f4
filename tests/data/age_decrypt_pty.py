#!/usr/bin/env python3
"""Decrypts a passphrase-encrypted age file with the reference `age` CLI, which reads a
passphrase only from a terminal: runs `age -d -o DST SRC` on a pseudo-terminal and types
PASSPHRASE at its prompt. Usage: age_decrypt_pty.py PASSPHRASE SRC DST; exits with age's
status and prints what age printed (the passphrase echo is not printed) to stderr."""
import os, pty, sys, time
def decrypt(passphrase, src, dst):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("age", ["age", "-d", "-o", dst, src])
    out = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"assphrase" in out:
            os.write(fd, passphrase.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out
code, out = decrypt(sys.argv[1], sys.argv[2], sys.argv[3])
sys.stderr.write(out.decode(errors="replace").replace(sys.argv[1], "<passphrase>"))
sys.exit(code)
