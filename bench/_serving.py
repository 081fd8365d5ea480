"""How every benchmark serves an app: a loopback socket and one uvicorn configuration for all."""

from __future__ import annotations

import socket
from typing import Any


def loopback_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns TCP_NODELAY on for accepted connections only when the
    # listening socket says TCP; with proto 0 every keep-alive answer waits ~40 ms (Nagle vs
    # delayed ACK) and both servers would measure that instead of their work.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def uvicorn_config(app: Any) -> Any:
    import uvicorn

    # The same settings for both servers (and the same as `parkgate sandbox`, minus the log level).
    return uvicorn.Config(app, access_log=False, log_level="warning", ws="websockets-sansio", lifespan="on")
