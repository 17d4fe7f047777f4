#!/usr/bin/env python3
"""Loopback TCP proxy that delays every byte by DELAY ms in each direction (so a round
trip gains 2*DELAY), without limiting bandwidth. For scripts/bench_upload.sh.

usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS
Only binds and connects to 127.0.0.1.
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def rd():
        while True:
            try:
                data = await reader.read(256 * 1024)
            except OSError:
                data = b""
            await q.put((loop.time() + delay, data))
            if not data:
                return

    async def wr():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.close()
                except OSError:
                    pass
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    await asyncio.gather(rd(), wr())


async def main():
    listen, upstream, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    delay = delay_ms / 1000.0

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, sw, delay), pipe(sr, cw, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
