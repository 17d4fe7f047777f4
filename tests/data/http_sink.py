#!/usr/bin/env python3
"""A real HTTP server for the integration tests (Python's http.server): it records every
request as DIR/NNNN.json (method, path, headers, body as text and base64) and answers with
the status of the control file (--control, JSON, read for every request):
  {"status": 503, "count": 2}   503 for the next 2 requests, then 200
  {"status": 200, "body": "..."} the answer's body (default `{"ok":true}`)
  {"big": 1000000}              answer 200 with this many bytes
Prints `READY <port>` once listening; exit 98 when the port is taken.
"""
import argparse
import base64
import errno
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
seq = [0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--control")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    def answer():
        status, body = 200, b'{"ok":true}'
        if a.control and os.path.exists(a.control):
            with lock:
                with open(a.control) as f:
                    text = f.read().strip()
                c = json.loads(text) if text else {}
                if c.get("big"):
                    return 200, b"x" * c["big"]
                if "status" in c and c.get("count", 1) > 0:
                    status = c["status"]
                    if "count" in c:
                        c["count"] -= 1
                        tmp = a.control + ".tmp"
                        with open(tmp, "w") as f:
                            json.dump(c, f)
                        os.replace(tmp, a.control)
                if "body" in c:
                    body = c["body"].encode()
        return status, body

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            sys.stderr.write("%s\n" % (args[0] % args[1:]))

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            with lock:
                seq[0] += 1
                s = seq[0]
            rec = {
                "seq": s,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "body_b64": base64.b64encode(body).decode(),
            }
            base = os.path.join(a.dir, f"{s:04d}")
            with open(base + ".tmp", "w") as f:
                json.dump(rec, f)
            os.replace(base + ".tmp", base + ".json")
            status, out = answer()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_POST = do_PUT = do_GET = handle_any

    try:
        srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            sys.exit(98)
        raise
    print(f"READY {a.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
