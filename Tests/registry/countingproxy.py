#!/usr/bin/env python3
"""A TCP forwarder that counts the bytes clients send through it.

Tests put it between a pusher and a registry to measure what the registry
received (distribution's access log counts only what it sends). The total
is written to --count-file as it grows (at most every 50 ms, and when a
connection closes).
"""
import argparse
import asyncio
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--target", required=True, help="host:port")
parser.add_argument("--count-file", required=True)
args = parser.parse_args()
target_host, target_port = args.target.rsplit(":", 1)

sent = 0
written_at = 0.0


def record(force=False):
    global written_at
    now = time.monotonic()
    if force or now - written_at > 0.05:
        written_at = now
        with open(args.count_file + ".tmp", "w") as f:
            f.write(str(sent))
        import os
        os.replace(args.count_file + ".tmp", args.count_file)


async def pipe(reader, writer, counted):
    global sent
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            if counted:
                sent += len(data)
                record()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass
        record(force=True)


async def handle(client_reader, client_writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(target_host, int(target_port))
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, upstream_writer, True), pipe(upstream_reader, client_writer, False))


async def main():
    record(force=True)
    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
