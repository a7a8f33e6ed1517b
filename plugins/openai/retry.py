"""When to retry a chat-completion request, and how long to wait first.

Retried: 408, 409, 429 and 5xx answers, timeouts, connection errors and malformed bodies.
Fatal for the whole run: 401, 403 and 404 (every other request would fail the same way).
Anything else (a 400 for one oversized prompt, say) fails that request only.

Waits use exponential backoff with full jitter (a uniform draw in ``[0, min(cap, base * 2**n)]``,
which spreads retries of requests that failed together), except when the server sent
``Retry-After``: then we wait what it asked, plus a little jitter, never less.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["ok", "retry", "fatal", "failed"]

RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({401, 403, 404})


def classify_status(status: int) -> Kind:
    """What an HTTP status means for the request: ``ok``, ``retry``, ``fatal`` or ``failed``."""
    if 200 <= status < 300:
        return "ok"
    if status in RETRY_STATUSES or status >= 500:
        return "retry"
    if status in FATAL_STATUSES:
        return "fatal"
    return "failed"


@dataclass
class Backoff:
    """Exponential backoff with full jitter, honouring Retry-After."""

    base: float = 0.5
    cap: float = 30.0
    retry_after_jitter: float = 0.1  # fraction of Retry-After added at most, to spread a herd
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None and retry_after > 0:
            return retry_after + self.rng.uniform(0, min(1.0, retry_after * self.retry_after_jitter))
        return self.rng.uniform(0, min(self.cap, self.base * 2.0 ** min(retry, 30)))
