"""Real servers on loopback for tests: a free port, an ASGI app under uvicorn, a background ticker."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp


def bound_socket() -> socket.socket:
    """A loopback socket on a free port, bound before the server starts so the port is known."""
    # IPPROTO_TCP explicitly, so uvicorn turns on TCP_NODELAY: without it every small answer waits ~40 ms (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(app: ASGIApp, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Run `app` under uvicorn in this event loop; yield its base URL, e.g. http://127.0.0.1:41234."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def repeating(action: Callable[[], Awaitable[object]], every_s: float) -> AsyncIterator[None]:
    """`action()` every `every_s` seconds in the background while the block runs (events to a
    subscriber, say)."""
    async def loop() -> None:
        while True:
            await action()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def free_port() -> int:
    """A loopback port free now, for a server started in another process (which binds it itself)."""
    with bound_socket() as sock:
        return sock.getsockname()[1]
