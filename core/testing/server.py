"""A real HTTP server on 127.0.0.1 for tests, running its own event loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from typing import Any

from aiohttp import web


class LocalServer(ABC):
    """An aiohttp application served on 127.0.0.1 (a free port) from a background thread, so
    synchronous tests and clients in other threads or processes can talk to it over real HTTP.

    Subclasses add their routes in :meth:`routes`. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    base_path = ""  # appended to the origin in :attr:`base_url`
    max_body_bytes = 1024**2

    def __init__(self) -> None:
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def routes(self, app: web.Application) -> None:
        """Add the server's routes to ``app``."""

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    async def _start(self) -> None:
        app = web.Application(client_max_size=self.max_body_bytes)
        self.routes(app)
        # Held or slow handlers must not keep a test waiting at shutdown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
