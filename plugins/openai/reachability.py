"""Telling "the server is not there" apart from "the server hiccupped".

A refused port, an unknown host, a TLS failure or a server that never answers within the timeout
are not worth eight retries per request with growing waits: until the server has answered once,
:class:`Reachability` stops the run with one line as soon as such failures have lasted
``patience`` seconds (a TLS certificate failure stops it at once: waiting will not fix it). Once
the server has answered anything, connection errors are taken as transient and retried within
the usual limits.
"""

from __future__ import annotations

import socket
import ssl

from synthtune.core.errors import GenerationError
from synthtune.plugins.openai.clock import Clock

# Connection failures that say nothing will work until something outside the run changes.
UNREACHABLE = {
    "refused": "connection refused",
    "dns": "unknown host",
    "tls": "TLS handshake failed",
    "reset": "the server closed the connection",
    "timeout": "no answer within the timeout",
    "other": "connection failed",
}


def connection_reason(error: BaseException) -> str:
    """``refused``, ``dns``, ``tls``, ``reset`` or ``other``: why a connection failed, read from
    the exception and the errors it wraps (aiohttp's, httpx's and the openai client's)."""
    seen: set[int] = set()
    current: BaseException | None = error
    text = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        text += f" {name} {current}"
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, socket.gaierror) or "DNSError" in name:
            return "dns"
        if isinstance(current, ssl.SSLError | ssl.CertificateError) or "SSL" in name or "Certificate" in name:
            return "tls"
        if isinstance(current, ConnectionResetError) or "ServerDisconnected" in name:
            return "reset"
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, BaseException) and os_error is not current:
            current = os_error
            continue
        current = current.__cause__ or current.__context__
    lowered = text.lower()
    if "connection refused" in lowered or "errno 111" in lowered:
        return "refused"
    if (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or "getaddrinfo" in lowered
    ):
        return "dns"
    if "certificate" in lowered or "ssl" in lowered:
        return "tls"
    return "other"


class Reachability:
    """Watches connection failures until the server first answers (see the module docstring)."""

    def __init__(self, url: str, *, patience: float, timeout: float, clock: Clock) -> None:
        self.url = url
        self.patience = patience
        self.timeout = timeout
        self.clock = clock
        self.answered = False
        self.started: float | None = None
        self.failures = 0

    def on_attempt(self) -> None:
        """An attempt is about to be sent."""
        if self.started is None:
            self.started = self.clock.now()

    def on_reply(self) -> None:
        """The server answered (any HTTP status): from now on connection errors are transient."""
        self.answered = True

    def on_failure(self, reason: str, detail: str, *, last_try: bool = False) -> None:
        """An attempt got no HTTP answer. Raises GenerationError when the server has never
        answered and this is hopeless: a TLS failure, failures for ``patience`` seconds, or
        ``last_try`` (the request would not be sent again)."""
        if self.answered:
            return
        self.failures += 1
        elapsed = self.clock.now() - (self.started if self.started is not None else self.clock.now())
        if reason == "tls" or last_try or (elapsed >= self.patience and self.failures >= 2):
            raise GenerationError(self.message(reason, detail))

    def message(self, reason: str, detail: str) -> str:
        what = UNREACHABLE.get(reason, UNREACHABLE["other"])
        hint = {
            "refused": "is the server running, and on this port?",
            "dns": "check the host name in base_url / OPENAI_BASE_URL",
            "tls": "check the URL's scheme and the server's certificate",
            "timeout": f"raise generate.timeout (now {self.timeout:g}s) if the server is slow",
        }.get(reason, "check base_url / OPENAI_BASE_URL and the network")
        return f"cannot reach the server at {self.url}: {what} ({detail}); {hint}"
