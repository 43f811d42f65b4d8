#!/usr/bin/env python3
"""A TCP relay on loopback that delays every byte by a fixed time in each direction.

    tcp-delay.py LISTEN_PORT TARGET_PORT DELAY_MS [--echo ECHO_PORT]

Gives a loopback server (sshd) the round trip of a LAN: this kernel has no netem. Bytes keep
their order and the relay pipelines (a chunk is held DELAY_MS, not the connection), so
throughput is not capped by the delay. With --echo, also serves a plain echo service on
ECHO_PORT (to measure the round trip through a second relay). Loopback only; stops on
SIGTERM.
"""
import asyncio
import signal
import sys
import time

HOST = "127.0.0.1"


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def hold():
        while True:
            chunk = await reader.read(1 << 16)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                return

    async def release():
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    try:
        await asyncio.gather(hold(), release())
    except (OSError, asyncio.CancelledError):
        pass


async def relay(target, delay, client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection(HOST, target)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, server_writer, delay),
        pump(server_reader, client_writer, delay),
    )
    for w in (client_writer, server_writer):
        w.close()


async def echo(reader, writer):
    while True:
        data = await reader.read(1 << 16)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def main():
    listen, target, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    delay = delay_ms / 1000.0
    servers = [
        await asyncio.start_server(
            lambda r, w: relay(target, delay, r, w), HOST, listen, reuse_address=True
        )
    ]
    if len(sys.argv) > 5 and sys.argv[4] == "--echo":
        servers.append(await asyncio.start_server(echo, HOST, int(sys.argv[5])))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
