"""Bind the API's port before serving, so a taken port is one clear line and "listening" is true.

uvicorn binds the port itself, after the app is imported, and reports a taken port as a log
line among others; ``serve`` binds it first instead (after the config is validated and the
store migrated), says so only once the socket listens, and hands the socket to uvicorn.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from traitsync.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; a taken or unusable address is a ``ConfigError``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is already in use (another traitsync, or another program)" \
            if exc.errno in (98, 48) else (exc.strerror or str(exc))
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}; choose another with --port") from None
    sock.set_inheritable(True)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``on_started`` once the app has started and serves the socket."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


def serve_on(sock: socket.socket, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
    """Serve ``config``'s app on ``sock`` (in ``config.workers`` processes); exit 1 if it never starts."""
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        on_started()  # the socket listens: connections wait in its backlog until a worker takes them
        supervisor: Any
        try:
            supervisor = Multiprocess(config, sockets=[sock])  # type: ignore[call-arg]
        except TypeError:  # uvicorn before 0.36 takes the target to run in each process
            supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock])  # type: ignore[call-arg]
        supervisor.run()
        return
    server = _AnnouncingServer(config, on_started)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(1)
