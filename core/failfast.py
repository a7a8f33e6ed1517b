"""Stop a run whose requests all fail, whatever the generate backend.

A backend retries what may work later and fails what will not; but when the server rejects
every request (a wrong model name on a server that answers 400, a proxy that answers HTML, a
quota that ran out), each request failing on its own still costs the whole run's time and ends
with an empty dataset. :class:`FailFast` watches the outcomes as they settle and stops the run
with one line when, before any request has succeeded,

- the first ``same`` settled requests all failed the same way, or
- ``any_kind`` settled requests failed, in whatever ways.

Answers served from the run store never reach it, nor do requests that were never sent
(``attempts == 0``: a batch left running, say), and one success turns it off for the run:
after that, failures are the run's partial failures (a rerun retries them).
"""

from __future__ import annotations

import re
from collections import Counter

from synthtune.core.errors import GenerationError
from synthtune.core.models import GenerationOutcome

SAME_FAILURES = 8
ANY_FAILURES = 24

_TRAILER = re.compile(r"\s*\((?:gave up|not retried)[^()]*\)\s*$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def failure_kind(error: str | None) -> str:
    """What a failure is, apart from its details: the backend's retry note (``(gave up after
    3 attempts)``) is dropped and numbers become ``N``, so "prompt has 5012 tokens" and
    "prompt has 6120 tokens" are the same kind."""
    text = _TRAILER.sub("", error or "no answer")
    return " ".join(_NUMBER.sub("N", text).split())[:200]


class FailFast:
    """Watches settled requests; :meth:`observe` raises GenerationError to stop the run."""

    def __init__(self, same: int = SAME_FAILURES, any_kind: int = ANY_FAILURES) -> None:
        self.same = same
        self.any_kind = any_kind
        self.succeeded = False
        self.failed = 0
        self.kinds: Counter[str] = Counter()
        self.first_error: dict[str, str] = {}

    def observe(self, outcome: GenerationOutcome) -> None:
        """Note one settled request (answered by the backend, or failed)."""
        if self.succeeded:
            return
        if outcome.ok:
            self.succeeded = True
            return
        if outcome.attempts == 0:  # never sent (left unanswered, interrupted): not the server's doing
            return
        self.failed += 1
        kind = failure_kind(outcome.error)
        self.kinds[kind] += 1
        self.first_error.setdefault(kind, " ".join((outcome.error or "no answer").split()))
        if len(self.kinds) == 1 and self.failed >= self.same:
            raise GenerationError(
                f"the server rejects every request: the first {self.failed} all failed with "
                f"{self.first_error[kind]}"
            )
        if self.failed >= self.any_kind:
            common, n = self.kinds.most_common(1)[0]
            raise GenerationError(
                f"the server rejects every request: the first {self.failed} all failed "
                f"({len(self.kinds)} kinds of error; {n} with {self.first_error[common]})"
            )
